var month = 'November';
print(JSON.stringify({text: 'Please submit your ' + month + ' expense report by Friday.'}));

#!/usr/bin/env bash
# The JSON Schemas and the tool agree: `kore-notify init` output is checked by an independent
# validator (check-jsonschema, as editors would with the yaml-language-server modelines) and by
# `kore-notify validate`, valid as written, then with deliberate typos, each of which both must
# flag; and forms the tool accepts (numbers as text) the schema must accept too. Run by .ci/run.
#
#   scripts/check-schemas.sh [path/to/kore-notify]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-}
if [ -z "$bin" ]; then
  cargo build --locked --quiet
  bin="$PWD/target/debug/kore-notify"
fi
command -v check-jsonschema >/dev/null || python3 -m pip install --quiet --disable-pip-version-check check-jsonschema
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$bin" init "$work/repo" >/dev/null 2>&1
cd "$work/repo"
fail() { echo "FAIL: $*"; exit 1; }
schema_ok() { check-jsonschema --schemafile "schemas/$1.schema.json" "$2" >/dev/null 2>&1; }
tool_ok() { KORE_CLIENT_ID=x "$bin" validate >/dev/null 2>&1; }

schema_ok config kore-notify.yaml || fail "the config from init does not match its schema"
for m in notifications/*.yaml; do schema_ok manifest "$m" || fail "$m from init does not match the schema"; done
tool_ok || fail "init's repository is not valid"

original=$(cat notifications/welcome-ivr.yaml)
# manifest: both flag each typo
while IFS='|' read -r name from to; do
  to=${to//\\n/$'\n'}
  printf '%s\n' "${original/"$from"/"$to"}" >notifications/welcome-ivr.yaml
  if schema_ok manifest notifications/welcome-ivr.yaml; then fail "schema accepts: $name"; fi
  if tool_ok; then fail "validate accepts: $name"; fi
  echo "ok: both flag $name"
done <<'CASES'
misspelt field|channel: ivr|chanel: ivr
unknown channel|channel: ivr|channel: ivrr
unknown content type|type: text|type: txt
misspelt identity field|- email: carol@example.com|- emial: carol@example.com
parameters not a mapping|parameters: {name: Carol, badge: B-1001}|parameters: [Carol]
key with a space|key: welcome/ivr|key: welcome ivr
bad onChange|key: welcome/ivr|key: welcome/ivr\nonChange: maybe
CASES
printf '%s\n' "$original" >notifications/welcome-ivr.yaml
# manifest: both accept what the tool reads as text
cat >notifications/numbers.yaml <<'YAML'
key: numbers
channel: whatsapp
content: {type: text, value: 42}
identities:
  - 919800000001
YAML
schema_ok manifest notifications/numbers.yaml || fail "schema refuses numbers the tool accepts as text"
tool_ok || fail "validate refuses numbers as text"
echo "ok: both accept numbers as text"
rm notifications/numbers.yaml
# config: both flag each typo
cfg=$(cat kore-notify.yaml)
while IFS='|' read -r name from to; do
  to=${to//\\n/$'\n'}
  printf '%s\n' "${cfg/"$from"/"$to"}" >kore-notify.yaml
  if schema_ok config kore-notify.yaml; then fail "config schema accepts: $name"; fi
  if tool_ok; then fail "validate accepts config: $name"; fi
  echo "ok: both flag config $name"
done <<'CASES'
misspelt field|manifests: [notifications]|manifest: [notifications]
literal secret|clientSecret: ${KORE_CLIENT_SECRET}|clientSecret: hunter2
misspelt policy condition|manifests: [notifications]|manifests: [notifications]\npolicy: [{name: r, when: {chanel: ivr}, deny: no}]
policy threshold 1k|manifests: [notifications]|manifests: [notifications]\npolicy: [{name: r, when: {recipients: {total: ">1k"}}, deny: no}]
two effects in one rule|manifests: [notifications]|manifests: [notifications]\npolicy: [{name: r, warn: careful, deny: no}]
empty approvers|manifests: [notifications]|manifests: [notifications]\npolicy: [{name: r, require: {approvals: 1, from: []}}]
CASES
printf '%s\n' "$cfg" >kore-notify.yaml
# config: both accept init's sample policy, uncommented (from `# policy:` to `# businessHours:`;
# the sample targets after it stay commented)
sed -E '/^# policy:/,/^# businessHours:/ s/^# (policy:|businessHours:|  )/\1/' <<<"$cfg" >kore-notify.yaml
grep -q '^policy:' kore-notify.yaml || fail "init's config has no commented sample policy"
schema_ok config kore-notify.yaml || fail "the config schema refuses init's sample policy"
tool_ok || fail "validate refuses init's sample policy"
echo "ok: both accept init's sample policy"
printf '%s\n' "$cfg" >kore-notify.yaml
echo "PASS: the schemas and kore-notify agree on init's repository"

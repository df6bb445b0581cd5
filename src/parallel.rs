//! The one thread fan-out: a slice cut into contiguous chunks, one scoped thread per chunk (as
//! many as there are cores, within a cap), results in the slice's order.

/// Runs `work` on `items` split into at most `max_threads` contiguous chunks (fewer on fewer
/// cores), one thread each, with `stack` bytes of stack when given. Returns each chunk's result in
/// order; a panic in one is resumed here. A chunk whose thread could not be started is worked on
/// this thread instead when no stack size is asked for (the caller's stack is enough); with one,
/// it is `Err`.
pub(crate) fn fan_out<T: Send, R: Send>(
    items: &mut [T],
    max_threads: usize,
    stack: Option<usize>,
    work: impl Fn(&mut [T]) -> R + Sync,
) -> Vec<std::io::Result<R>> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).clamp(1, max_threads.max(1));
    let chunk = items.len().div_ceil(threads).max(1);
    let work = &work;
    let mut results: Vec<std::io::Result<R>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks_mut(chunk)
            .map(|part| {
                let builder = std::thread::Builder::new();
                let builder = match stack {
                    Some(bytes) => builder.stack_size(bytes),
                    None => builder,
                };
                builder.spawn_scoped(s, move || work(part))
            })
            .collect();
        handles.into_iter().map(|h| h.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))).collect()
    });
    if stack.is_none() {
        for (r, part) in results.iter_mut().zip(items.chunks_mut(chunk)) {
            if r.is_err() {
                *r = Ok(work(part));
            }
        }
    }
    results
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_covers_every_item() {
        let mut items: Vec<u32> = (0..1000).collect();
        let sums = super::fan_out(&mut items, 8, None, |part| part.to_vec());
        let all: Vec<u32> = sums.into_iter().flat_map(std::result::Result::unwrap_or_default).collect();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        assert!(super::fan_out(&mut Vec::<u32>::new(), 4, None, |p| p.len()).is_empty());
    }
}

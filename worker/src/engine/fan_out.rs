//! Running client lanes on threads of their own ([`fan_out`]).

use super::Ctx;
use std::future::Future;
use std::sync::Arc;

/// Run futures concurrently until all finish, spread over the scenario's
/// `threads` (default one per CPU; at most one per future), each thread with a
/// single-threaded runtime: a
/// lane stays on its thread, so its socket wakes it where it runs, as in wrk's
/// or h2load's event loops. (On tokio's work-stealing runtime the same HTTP/1.1
/// client needed twice the CPU per request, most of it in cross-thread
/// wake-ups.) Falls back to tasks on the current runtime if a thread cannot be
/// started, and stays there when that runtime is single-threaded already.
/// Each thread is registered as a sending thread of the job while it runs (for
/// the busiest sending thread's CPU, [`Recorder::sending_thread`]).
///
/// [`Recorder::sending_thread`]: crate::recorder::Recorder::sending_thread
pub(crate) async fn fan_out<F>(ctx: &Ctx, futs: Vec<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let threads = ctx.spec.threads;
    // Already on a single-threaded runtime (a test's, with simulated time):
    // run here.
    if tokio::runtime::Handle::current().runtime_flavor()
        == tokio::runtime::RuntimeFlavor::CurrentThread
    {
        return join_all(futs).await;
    }
    let threads = match threads {
        Some(t) => t as usize,
        None => std::thread::available_parallelism().map_or(1, usize::from),
    }
    .clamp(1, futs.len().max(1));
    let mut groups: Vec<Vec<F>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, f) in futs.into_iter().enumerate() {
        groups[i % threads].push(f);
    }
    let mut running = Vec::new();
    let mut local = Vec::new();
    for (i, group) in groups.into_iter().enumerate() {
        // The thread takes its group out of the slot once its runtime runs and
        // says so; if the thread or its runtime cannot start, the group runs
        // here instead.
        let slot = Arc::new(std::sync::Mutex::new(Some(group)));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<bool>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let theirs = slot.clone();
        let rec = ctx.rec.clone();
        let started = std::thread::Builder::new()
            .name(format!("cnibench-lanes-{i}"))
            .spawn(move || {
                let _sending = rec.sending_thread();
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                let group = match rt {
                    Ok(_) => theirs.lock().ok().and_then(|mut g| g.take()),
                    Err(_) => None,
                };
                let (Ok(rt), Some(group)) = (rt, group) else {
                    let _ = ready_tx.send(false);
                    return;
                };
                let _ = ready_tx.send(true);
                rt.block_on(join_all(group));
                let _ = done_tx.send(());
            });
        let ok = match started {
            Ok(_) => matches!(ready_rx.await, Ok(true)),
            Err(_) => false,
        };
        if ok {
            running.push(done_rx);
        } else {
            local.extend(
                slot.lock()
                    .ok()
                    .and_then(|mut g| g.take())
                    .into_iter()
                    .flatten(),
            );
        }
    }
    join_all(local).await;
    for rx in running {
        let _ = rx.await;
    }
}

/// Run futures as tasks of the current runtime until all finish.
async fn join_all<F>(futs: Vec<F>)
where
    F: Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for f in futs {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

//! UDP engines. Every datagram starts with a 16-byte header: sequence number and
//! the sender's send time (unix ns), both big-endian.
//!
//! `udp-stream`: clients send datagrams of `message_size` (paced for a bitrate or
//! packet rate); the server tracks each sender the way iperf3 does: a sequence
//! gap counts as lost, a late datagram that fills a gap counts as reordered (net
//! loss = lost - reordered), one seen twice as a duplicate; jitter is the RFC 3550
//! interarrival jitter, J += (|D| - J) / 16, from send and receive times (clock
//! offset between the hosts cancels out in D).
//!
//! `udp-rr`: a response that does not come within the plan's `timeout` counts
//! as lost, never as a latency. In closed loop (`rate: max`) each lane has one
//! request outstanding at a time, like netperf's UDP_RR. In open loop the
//! requests of a lane are independent, as datagrams are: a lane sends each on
//! its schedule whatever is still outstanding, matches answers by sequence
//! number ([`Outstanding`]), and counts a request unanswered after `timeout` as
//! lost; a loss holds up nothing.

use super::{
    Ctx, Engine, Exchange, RETRY_PAUSE, Served, Task, TxError, fan_out, rr_clients, timer,
};
use crate::recorder::error_kind;
use cnibench_proto::clock::unix_now_ns;
use cnibench_proto::pacing::Pacer;
use cnibench_proto::plan::UDP_HEADER;
use cnibench_proto::units::Rate;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::{HashMap, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::time::Instant;

const HEADER: usize = UDP_HEADER as usize;
/// Socket buffers: deep enough for bursts at multi-Gbit/s rates.
const SOCKET_BUFFER: usize = 4 << 20;
/// A datagram numbered more than this far ahead of the next one expected is
/// stray (forged, or from an earlier run), not a gap: counted as `stray`, it
/// changes neither loss nor jitter. 2^24 datagrams is 17 s of total loss at
/// 1 M datagrams/s from one sender; without it one datagram numbered 2^63
/// read as ~100% loss, and two overflowed the loss counter.
const MAX_AHEAD: u64 = 1 << 24;

/// Sequence numbers remembered per sender to tell duplicates from late arrivals.
const WINDOW: u64 = 1 << 16;

/// A non-blocking UDP socket bound to `addr`, with deep buffers (QUIC's too).
pub(super) fn bind(addr: SocketAddr) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps these at net.core.{r,w}mem_max.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    UdpSocket::from_std(bind(addr)?)
}

/// Where a client socket for `target` binds: any address of its family, a port
/// chosen by the kernel.
pub(super) fn any_local(target: SocketAddr) -> SocketAddr {
    let any: IpAddr = if target.is_ipv4() {
        [0, 0, 0, 0].into()
    } else {
        [0u16; 8].into()
    };
    SocketAddr::new(any, 0)
}

/// Where a client socket for `target` binds: `ctx.local_ip` when set (the
/// source the server admits), else any address of the family.
fn local_for(target: SocketAddr, ctx: &Ctx) -> SocketAddr {
    match ctx.local_ip {
        Some(ip) if ip.is_ipv4() == target.is_ipv4() => SocketAddr::new(ip, 0),
        _ => any_local(target),
    }
}

/// A client socket connected to `target` (so ICMP errors surface as send errors),
/// sending from `ctx.local_ip` when set (the source a udp-rr server admits).
async fn client_socket(target: SocketAddr, ctx: &Ctx) -> io::Result<UdpSocket> {
    let s = socket(local_for(target, ctx))?;
    s.connect(target).await?;
    Ok(s)
}

fn write_header(buf: &mut [u8], seq: u64) {
    buf[..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..16].copy_from_slice(&unix_now_ns().to_be_bytes());
}

fn read_header(buf: &[u8]) -> Option<(u64, i64)> {
    let seq = u64::from_be_bytes(buf.get(..8)?.try_into().ok()?);
    let sent = i64::from_be_bytes(buf.get(8..16)?.try_into().ok()?);
    Some((seq, sent))
}

/// What a receiver knows about one sender.
#[derive(Debug, Default)]
struct Flow {
    /// Next sequence number expected.
    next: u64,
    /// Bitmap of recently seen sequence numbers, indexed by `seq % WINDOW`.
    seen: Vec<u64>,
    jitter_ns: f64,
    last_transit: Option<i64>,
}

/// How one datagram changed a flow's accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arrival {
    InOrder,
    /// Opened a gap of this many datagrams.
    Gap(u64),
    Reordered,
    Duplicate,
    /// Implausibly far ahead ([`MAX_AHEAD`]): ignored.
    Stray,
}

impl Flow {
    fn bit(&mut self, seq: u64) -> (&mut u64, u64) {
        if self.seen.is_empty() {
            self.seen = vec![0; (WINDOW / 64) as usize];
        }
        let i = seq % WINDOW;
        (&mut self.seen[(i / 64) as usize], 1 << (i % 64))
    }

    /// Account for datagram `seq` sent at `sent_ns`, received at `recv_ns`.
    fn on_datagram(&mut self, seq: u64, sent_ns: i64, recv_ns: i64) -> Arrival {
        if seq.saturating_sub(self.next) > MAX_AHEAD {
            return Arrival::Stray;
        }
        let transit = recv_ns.saturating_sub(sent_ns);
        if let Some(last) = self.last_transit {
            let d = transit.saturating_sub(last).unsigned_abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit = Some(transit);
        if seq >= self.next {
            // Forget the bits of sequence numbers skipped past, then mark this one.
            for s in self.next.max(seq.saturating_sub(WINDOW - 1))..seq {
                let (w, m) = self.bit(s);
                *w &= !m;
            }
            let (w, m) = self.bit(seq);
            *w |= m;
            let gap = seq - self.next;
            self.next = seq + 1;
            return if gap == 0 {
                Arrival::InOrder
            } else {
                Arrival::Gap(gap)
            };
        }
        if self.next - seq > WINDOW {
            return Arrival::Reordered;
        }
        let (w, m) = self.bit(seq);
        if *w & m != 0 {
            Arrival::Duplicate
        } else {
            *w |= m;
            Arrival::Reordered
        }
    }
}

/// Sequence-numbered datagram stream.
#[derive(Debug)]
pub struct Stream;

impl Engine for Stream {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let sock = socket(SocketAddr::new(ip, ctx.spec.listen_port()))?;
        let port = sock.local_addr()?.port();
        Ok(Served::plain(port, Box::pin(receive(sock, ctx))))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let streams = ctx.spec.streams;
        let size = ctx.spec.message_size.0 as usize;
        let loops: Vec<_> = (0..streams)
            .map(|lane| {
                send_stream(
                    ctx.clone(),
                    target,
                    size,
                    ctx.pacer(lane, streams, size as u64 * 8),
                )
            })
            .collect();
        Box::pin(async move { fan_out(&ctx, loops).await })
    }
}

/// Ask the kernel to stamp each received datagram with its arrival time.
fn enable_rx_timestamps(sock: &UdpSocket) -> io::Result<()> {
    setsockopt(sock, sockopt::ReceiveTimestampns, &true).map_err(io::Error::from)
}

/// Receive one datagram into `buf`: its length, sender, and the kernel's arrival
/// time (unix ns; `None` if the kernel gave none).
fn recv_stamped(sock: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddr, Option<i64>)> {
    // Room for one SCM_TIMESTAMPNS message (16-byte header + 16-byte timespec).
    let mut cmsg = [0u8; 64];
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(io::Error::from)?;
    let from = msg
        .address
        .and_then(|a| {
            a.as_sockaddr_in()
                .map(|v4| SocketAddr::from(std::net::SocketAddrV4::from(*v4)))
                .or_else(|| {
                    a.as_sockaddr_in6()
                        .map(|v6| SocketAddr::from(std::net::SocketAddrV6::from(*v6)))
                })
        })
        .ok_or_else(|| io::Error::other("datagram without a source address"))?;
    let stamp = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::ScmTimestampns(ts) => {
                Some(ts.tv_sec().saturating_mul(1_000_000_000) + ts.tv_nsec())
            }
            _ => None,
        })
    });
    Ok((msg.bytes, from, stamp))
}

/// Account every datagram. Arrival times are the kernel's receive timestamps: the
/// receiver's own wake-up latency (tens of microseconds, more on a busy host) is
/// not the network's jitter or delay.
async fn receive(sock: UdpSocket, ctx: Ctx) {
    if let Err(e) = enable_rx_timestamps(&sock) {
        ctx.rec.io_error(&e);
    }
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut buf = vec![0u8; 65_536];
    loop {
        let (n, from, stamp) = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = sock.async_io(Interest::READABLE, || recv_stamped(&sock, &mut buf)) => match r {
                Ok(x) => x,
                Err(e) => {
                    ctx.rec.io_error(&e);
                    continue;
                }
            },
        };
        // Only the job's clients (memory for a flow is taken after this).
        if !ctx.admits(from.ip()) {
            ctx.rec.error("stranger");
            continue;
        }
        let Some((seq, sent)) = read_header(&buf[..n]) else {
            ctx.rec.error("short-datagram");
            continue;
        };
        let flow = flows.entry(from).or_default();
        let now = stamp.unwrap_or_else(unix_now_ns);
        let arrival = flow.on_datagram(seq, sent, now);
        if arrival == Arrival::Stray {
            ctx.rec.error("stray");
            continue;
        }
        let has_jitter = flow.last_transit.is_some() && seq > 0;
        // What an interval reports is each sender's jitter as it stands at its
        // last datagram in the interval, averaged over the senders heard in it
        // (UdpStats::jitter_ns; iperf3 reports a stream's final value and the
        // mean over streams), not the largest value the running estimate passed
        // through (one late datagram lifts J by its delay / 16 for a while), nor
        // the largest over every sender ever seen.
        let jitter = has_jitter.then_some((from, flow.jitter_ns as u64));
        let fresh = arrival != Arrival::Duplicate;
        let transit = fresh.then(|| {
            now.saturating_sub(sent)
                .saturating_sub(ctx.clock_correction_ns)
        });
        ctx.rec.datagram(
            if fresh { n as u64 } else { 0 },
            transit,
            jitter,
            |u| match arrival {
                Arrival::InOrder => u.received += 1,
                Arrival::Gap(g) => {
                    u.received += 1;
                    u.lost = u.lost.saturating_add(g);
                }
                Arrival::Reordered => {
                    u.received += 1;
                    u.reordered += 1;
                }
                Arrival::Duplicate => u.duplicates += 1,
                Arrival::Stray => {}
            },
        );
    }
}

/// Send a stream of datagrams on a thread of its own until stopped. tokio's timer
/// has 1 ms ticks: paced from a task, a 500 Mbit/s stream leaves in bursts of ~45
/// datagrams each millisecond, and the receiver measures the queueing that causes
/// as jitter. A blocking socket on a dedicated thread sends each datagram at its
/// own intended time instead ([`Ctx::pace_blocking`]).
async fn send_stream(ctx: Ctx, target: SocketAddr, size: usize, pacer: Option<Pacer>) {
    let c = ctx.clone();
    let send = move || {
        // A sending thread while it sends, for the job's per-thread CPU.
        let _sending = c.rec.sending_thread();
        send_blocking(&c, target, size, pacer)
    };
    if let Err(e) = tokio::task::spawn_blocking(send).await {
        ctx.rec.io_error(&io::Error::other(e));
    }
}

/// A blocking client socket connected to `target`; sends give up after a while so
/// the sender notices a stop even when the socket buffer stays full.
fn blocking_client_socket(target: SocketAddr, ctx: &Ctx) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(
        Domain::for_address(target),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.set_write_timeout(Some(SEND_TIMEOUT))?;
    s.bind(&local_for(target, ctx).into())?;
    s.connect(&target.into())?;
    Ok(s.into())
}

/// Longest a blocked send waits before the sender checks for a stop again.
const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(100);

fn send_blocking(ctx: &Ctx, target: SocketAddr, size: usize, mut pacer: Option<Pacer>) {
    let mut waits = match timer::Pacing::for_this_thread() {
        Ok(w) => w,
        Err(e) => return ctx.rec.io_error(&e),
    };
    let mut buf = vec![0x5a_u8; size.max(HEADER)];
    let mut seq = 0u64;
    let pause = |ctx: &Ctx| {
        let until = std::time::Instant::now() + RETRY_PAUSE;
        timer::block_until(until, &ctx.stop)
    };
    let sock = loop {
        match blocking_client_socket(target, ctx) {
            Ok(s) => break s,
            Err(e) => {
                ctx.rec.io_error(&e);
                if !pause(ctx) {
                    return;
                }
            }
        }
    };
    ctx.rec.connection();
    let mut free_since = std::time::Instant::now();
    while !ctx.stop.is_cancelled() {
        if let Some(p) = pacer.as_mut()
            && ctx.pace_blocking(p, &mut waits, free_since).is_none()
        {
            return;
        }
        write_header(&mut buf, seq);
        let r = sock.send(&buf);
        free_since = std::time::Instant::now();
        match r {
            Ok(n) => {
                seq += 1;
                ctx.rec.sent_datagram(n as u64);
            }
            // A full socket buffer for SEND_TIMEOUT: try again.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            // ICMP unreachable from an earlier datagram: count it and keep going.
            Err(e) => {
                ctx.rec.io_error(&e);
                if !pause(ctx) {
                    return;
                }
            }
        }
    }
}

/// Datagram request/response.
#[derive(Debug)]
pub struct Rr;

impl Engine for Rr {
    fn serve(&self, ip: IpAddr, ctx: Ctx) -> io::Result<Served> {
        let sock = Arc::new(socket(SocketAddr::new(ip, ctx.spec.listen_port()))?);
        let port = sock.local_addr()?.port();
        Ok(Served::plain(port, Box::pin(answer(sock, ctx))))
    }

    fn client(&self, target: SocketAddr, ctx: Ctx) -> Task {
        let (req, resp) = (
            ctx.spec.request_size.0 as usize,
            ctx.spec.response_size.0 as usize,
        );
        let lanes = ctx.spec.connections;
        if ctx.spec.rate == Rate::Max {
            return rr_clients(ctx, lanes, move |_| RrClient {
                target,
                sock: None,
                seq: 0,
                req: vec![0x5a; req],
                resp: vec![0; resp.max(HEADER)],
            });
        }
        let loops: Vec<_> = (0..lanes)
            .map(|lane| rr_open_lane(ctx.clone(), lane, lanes, target, req, resp))
            .collect();
        Box::pin(async move { fan_out(&ctx, loops).await })
    }
}

async fn answer(sock: Arc<UdpSocket>, ctx: Ctx) {
    let mut buf = vec![0u8; 65_536];
    let resp_len = (ctx.spec.response_size.0 as usize).max(HEADER);
    let pausing = !ctx.spec.server_delay.0.is_zero() || ctx.spec.server_stall.is_some();
    loop {
        let (n, from) = tokio::select! {
            _ = ctx.stop.cancelled() => return,
            r = sock.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    ctx.rec.io_error(&e);
                    continue;
                }
            },
        };
        // Not a reflector: strangers get nothing (counted), clients never more
        // than the job's response size.
        if !ctx.admits(from.ip()) {
            ctx.rec.error("stranger");
            continue;
        }
        if n < HEADER {
            ctx.rec.error("short-datagram");
            continue;
        }
        let mut resp = vec![0xa5_u8; resp_len];
        resp[..HEADER].copy_from_slice(&buf[..HEADER]);
        let (sock, ctx2) = (sock.clone(), ctx.clone());
        let reply = async move {
            ctx2.server_pause().await;
            match sock.send_to(&resp, from).await {
                Ok(sent) => ctx2.rec.served(n as u64, sent as u64),
                Err(e) => ctx2.rec.io_error(&e),
            }
        };
        // A delayed answer must not hold up the others.
        if pausing {
            tokio::spawn(reply);
        } else {
            reply.await;
        }
    }
}

/// The requests of an open-loop udp-rr lane that are still outstanding, by
/// sequence number (consecutive, from 1): without I/O, so it is tested on
/// numbers. Answers may come in any order; a request leaves when answered or
/// when it expires.
#[derive(Debug)]
struct Outstanding {
    /// Sequence number of the front entry.
    first: u64,
    /// When each request from `first` on was sent; `None` once answered.
    sent: VecDeque<Option<Instant>>,
    /// Entries not answered yet.
    waiting: usize,
}

impl Outstanding {
    fn new() -> Self {
        Outstanding {
            first: 1,
            sent: VecDeque::new(),
            waiting: 0,
        }
    }

    /// Sequence number the next request gets.
    fn next_seq(&self) -> u64 {
        self.first + self.sent.len() as u64
    }

    /// Request [`Outstanding::next_seq`] was sent at `at`.
    fn sent(&mut self, at: Instant) {
        self.sent.push_back(Some(at));
        self.waiting += 1;
    }

    /// The answer to `seq` arrived: when its request was sent, if it is still
    /// outstanding (not a duplicate, a late answer to an expired one, or junk).
    fn answer(&mut self, seq: u64) -> Option<Instant> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        let at = self.sent.get_mut(i)?.take()?;
        self.waiting -= 1;
        self.trim();
        Some(at)
    }

    /// Requests sent `timeout` or more before `now` and still unanswered are
    /// lost: remove them, and say how many.
    fn expire(&mut self, now: Instant, timeout: Duration) -> u64 {
        let mut lost = 0;
        while let Some(&Some(at)) = self.sent.front() {
            if now.saturating_duration_since(at) < timeout {
                break;
            }
            self.sent.pop_front();
            self.first += 1;
            self.waiting -= 1;
            lost += 1;
            self.trim();
        }
        lost
    }

    /// When the oldest unanswered request expires.
    fn next_expiry(&self, timeout: Duration) -> Option<Instant> {
        self.sent.front().copied().flatten().map(|at| at + timeout)
    }

    /// Drop answered entries from the front.
    fn trim(&mut self) {
        while matches!(self.sent.front(), Some(None)) {
            self.sent.pop_front();
            self.first += 1;
        }
    }
}

/// One open-loop udp-rr lane: sends on its schedule, whatever is outstanding;
/// answers are matched by sequence number and timed from their request's send;
/// a request unanswered after `timeout` is lost. Requests still outstanding at
/// the stop are unfinished, and those due but not sent (the socket could not be
/// opened, or sends failed) are counted as never sent.
async fn rr_open_lane(
    ctx: Ctx,
    lane: u32,
    lanes: u32,
    target: SocketAddr,
    req: usize,
    resp: usize,
) {
    let Some(mut pacer) = ctx.pacer(lane, lanes, 1) else {
        return;
    };
    let timeout = ctx.spec.timeout.0;
    let (mut req, mut resp) = (vec![0x5a_u8; req], vec![0u8; resp.max(HEADER)]);
    let pause = async || {
        tokio::select! {
            _ = ctx.stop.cancelled() => false,
            _ = tokio::time::sleep(RETRY_PAUSE) => true,
        }
    };
    let sock = loop {
        match client_socket(target, &ctx).await {
            Ok(s) => break s,
            Err(e) => {
                ctx.rec.io_error(&e);
                if !pause().await {
                    ctx.count_unsent(&mut pacer, None);
                    return;
                }
            }
        }
    };
    ctx.rec.connection();
    let mut out = Outstanding::new();
    let mut due = ctx.start() + Duration::from_nanos(pacer.next_ns());
    let mut free_since = ctx.start();
    loop {
        let expiry = out.next_expiry(timeout);
        tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => break,
            r = sock.recv(&mut resp) => match r {
                Ok(n) => {
                    let done = Instant::now();
                    if let Some((seq, _)) = read_header(&resp[..n])
                        && let Some(sent) = out.answer(seq)
                    {
                        let service = done - sent;
                        ctx.rec.transaction(service, Some(service), req.len() as u64, n as u64);
                    }
                }
                // An ICMP error for an earlier datagram (connected socket).
                Err(e) => ctx.rec.io_error(&e),
            },
            _ = tokio::time::sleep_until(due) => {
                let now = Instant::now();
                let queued = due < free_since;
                ctx.rec.scheduled(queued, now.saturating_duration_since(due.max(free_since)));
                write_header(&mut req, out.next_seq());
                ctx.rec.attempt();
                match sock.send(&req).await {
                    Ok(_) => out.sent(Instant::now()),
                    Err(e) => {
                        ctx.rec.failed(error_kind(&e));
                        if !pause().await {
                            break;
                        }
                        free_since = Instant::now();
                    }
                }
                due = ctx.start() + Duration::from_nanos(pacer.next_ns());
            }
            _ = tokio::time::sleep_until(expiry.unwrap_or(due)), if expiry.is_some() => {
                for _ in 0..out.expire(Instant::now(), timeout) {
                    ctx.rec.failed("lost");
                }
            }
        }
    }
    for _ in 0..out.waiting {
        ctx.rec.unfinished();
    }
    ctx.count_unsent(&mut pacer, Some(due));
}

struct RrClient {
    target: SocketAddr,
    sock: Option<UdpSocket>,
    seq: u64,
    req: Vec<u8>,
    resp: Vec<u8>,
}

impl Exchange for RrClient {
    async fn exchange(&mut self, ctx: &Ctx) -> Result<(u64, u64), TxError> {
        let sock = match self.sock.as_mut() {
            Some(s) => s,
            None => {
                let s = client_socket(self.target, ctx).await?;
                ctx.rec.connection();
                self.sock.insert(s)
            }
        };
        self.seq += 1;
        write_header(&mut self.req, self.seq);
        sock.send(&self.req).await?;
        loop {
            let n = sock.recv(&mut self.resp).await?;
            // Answers to earlier, timed-out requests are skipped.
            if read_header(&self.resp[..n]).is_some_and(|(s, _)| s == self.seq) {
                return Ok((self.req.len() as u64, n as u64));
            }
        }
    }

    /// A datagram without an answer is lost; a late answer is skipped by its
    /// sequence number, so the socket stays.
    fn timed_out(&mut self) -> &'static str {
        "lost"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::test_ctx;
    use crate::recorder::Window;
    use std::time::Duration;
    use tokio::time::Instant;

    /// A relay on 127.0.0.1 between one client and `server` that drops every
    /// `nth` datagram on the way to the server (none if 0); returns its address.
    async fn lossy_relay(
        server: SocketAddr,
        nth: u64,
        stop: tokio_util::sync::CancellationToken,
    ) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut client, mut n) = (None, 0u64);
            let mut buf = vec![0u8; 65_536];
            loop {
                let (len, from) = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = sock.recv_from(&mut buf) => r.unwrap(),
                };
                if from == server {
                    if let Some(c) = client {
                        let _ = sock.send_to(&buf[..len], c).await;
                    }
                    continue;
                }
                client = Some(from);
                n += 1;
                if nth == 0 || n % nth != 0 {
                    let _ = sock.send_to(&buf[..len], server).await;
                }
            }
        });
        addr
    }

    /// An udp-rr server and a client of `fields` through a relay dropping every
    /// `nth` request, for 1 s.
    async fn rr_through_relay(fields: &str, nth: u64) -> Window {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let sc = test_ctx(&format!("traffic: udp-rr, {fields}"));
        let served = Rr.serve(ip, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let relay = lossy_relay(SocketAddr::new(ip, served.port), nth, sc.stop.clone()).await;
        let c = test_ctx(&format!("traffic: udp-rr, {fields}"));
        c.t0.set(Instant::now()).unwrap();
        let client = tokio::spawn(Rr.client(relay, c.clone()));
        tokio::time::sleep(Duration::from_secs(1)).await;
        c.stop.cancel();
        client.await.unwrap();
        sc.stop.cancel();
        server.await.unwrap();
        c.rec.take()
    }

    #[tokio::test]
    async fn open_loop_udp_rr_loss_is_loss_not_latency() {
        // 200/s on one socket, a 100 ms timeout, every 5th request dropped: with
        // one request outstanding at a time, each loss would hold the lane for
        // 100 ms and the 20 requests due meanwhile would wait (latency from
        // their intended time). Independent requests: the loss is loss.
        let fields = "rate: 200/s, timeout: 100ms";
        let clean = rr_through_relay(fields, 0).await;
        let lossy = rr_through_relay(fields, 5).await;
        let p50 = |w: &Window| Duration::from_nanos(w.latency.value_at_quantile(0.5));
        eprintln!(
            "udp-rr p50 without loss {:?}, with 20% loss {:?}",
            p50(&clean),
            p50(&lossy)
        );
        assert!(
            p50(&lossy) < p50(&clean) * 3 + Duration::from_millis(2),
            "p50 {:?} with loss, {:?} without",
            p50(&lossy),
            p50(&clean)
        );
        let c = &lossy.counters;
        let lost = c.errors.get("lost").copied().unwrap_or(0);
        // Every 5th request that reached the relay; the last ones may be in
        // flight at the stop.
        assert!(c.attempts >= 180, "{c:?}");
        assert!(
            lost + c.unfinished >= c.attempts / 5 && lost <= c.attempts / 5,
            "{c:?}"
        );
        assert_eq!(c.failed, lost, "{c:?}");
        assert_eq!(
            c.attempts,
            c.transactions + c.failed + c.unfinished,
            "{c:?}"
        );
        assert_eq!(lossy.latency.len(), c.transactions);
        // Nothing queued behind a lost request (what the stop found due and
        // unsent counts as queued too).
        let s = &lossy.schedule;
        assert_eq!(s.queued, s.unsent, "{s:?}");
        assert_eq!(s.intended, c.attempts + s.unsent, "{s:?}");
    }

    /// A udp-rr server answers the job's clients only, never more than the
    /// response size; a stranger's request gets nothing and is counted.
    #[tokio::test]
    async fn udp_rr_server_answers_only_its_clients() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut sc = test_ctx("traffic: udp-rr, response_size: 100");
        sc.clients = Arc::new(vec![ip]);
        let served = Rr.serve(ip, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let to = SocketAddr::new(ip, served.port);
        let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // A large request, as a reflection attack would send (and a small one).
        stranger.send_to(&[7u8; 1000], to).await.unwrap();
        stranger.send_to(&[7u8; HEADER], to).await.unwrap();
        client.send_to(&[7u8; 1000], to).await.unwrap();
        // One loop serves in order: once the client's answer is back, the
        // stranger's requests were handled before it.
        let mut buf = vec![0u8; 65_536];
        let (n, from) = tokio::time::timeout(Duration::from_secs(10), client.recv_from(&mut buf))
            .await
            .expect("the client is answered")
            .unwrap();
        assert_eq!((n, from), (100, to));
        let r = stranger.try_recv_from(&mut buf);
        assert!(r.is_err(), "the stranger was answered: {r:?}");
        sc.stop.cancel();
        server.await.unwrap();
        let w = sc.rec.take().counters;
        assert_eq!(w.errors.get("stranger"), Some(&2), "{w:?}");
        assert_eq!((w.transactions, w.bytes_sent), (1, 100), "{w:?}");
    }

    #[test]
    fn outstanding_requests_leave_when_answered_or_expired() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let timeout = ms(100);
        let mut o = Outstanding::new();
        for i in 0..4 {
            assert_eq!(o.next_seq(), i + 1);
            o.sent(t0 + ms(10 * i));
        }
        // Out of order, and only once.
        assert_eq!(o.answer(3), Some(t0 + ms(20)));
        assert_eq!(o.answer(3), None, "a duplicate");
        assert_eq!((o.answer(0), o.answer(99)), (None, None), "junk");
        assert_eq!(o.answer(1), Some(t0));
        assert_eq!((o.first, o.waiting), (2, 2));
        assert_eq!(o.next_expiry(timeout), Some(t0 + ms(110)));
        // Request 2 expires at 110 ms; 3 was answered; 4 expires at 130 ms.
        assert_eq!(o.expire(t0 + ms(109), timeout), 0);
        assert_eq!(o.expire(t0 + ms(125), timeout), 1);
        assert_eq!(o.next_expiry(timeout), Some(t0 + ms(130)));
        assert_eq!(o.answer(2), None, "too late");
        assert_eq!(o.expire(t0 + ms(130), timeout), 1);
        assert_eq!((o.waiting, o.sent.len(), o.next_seq()), (0, 0, 5));
        assert_eq!(o.next_expiry(timeout), None);
    }

    #[test]
    fn loss_reorder_duplicates_like_iperf3() {
        let mut f = Flow::default();
        let seqs = [0u64, 1, 2, 5, 3, 3, 6, 4];
        let got: Vec<Arrival> = seqs.iter().map(|&s| f.on_datagram(s, 0, 100)).collect();
        use Arrival::*;
        assert_eq!(
            got,
            vec![
                InOrder,
                InOrder,
                InOrder,
                Gap(2),
                Reordered,
                Duplicate,
                InOrder,
                Reordered
            ]
        );
        // Net loss = gaps opened - gaps filled = 2 - 2 = 0.
    }

    #[test]
    fn jitter_follows_rfc3550() {
        let mut f = Flow::default();
        // Transit alternates 100us / 300us: |D| = 200us each time after the first.
        for (i, transit) in [100_000i64, 300_000, 100_000, 300_000]
            .into_iter()
            .enumerate()
        {
            f.on_datagram(i as u64, 0, transit);
        }
        // J1 = 200/16, J2 = J1 + (200 - J1)/16, J3 likewise.
        let mut j = 0.0f64;
        for _ in 0..3 {
            j += (200_000.0 - j) / 16.0;
        }
        assert!((f.jitter_ns - j).abs() < 1.0, "{} vs {j}", f.jitter_ns);
    }

    #[test]
    fn implausibly_far_ahead_is_stray_not_loss() {
        let mut f = Flow::default();
        assert_eq!(f.on_datagram(1 << 63, 0, 0), Arrival::Stray);
        assert_eq!(f.on_datagram(0, 0, 5), Arrival::InOrder);
        assert_eq!(f.on_datagram(u64::MAX, 0, 0), Arrival::Stray);
        assert_eq!(f.on_datagram(1 + MAX_AHEAD, 0, 5), Arrival::Gap(MAX_AHEAD));
        // Strays touch neither the sequence nor the jitter.
        assert_eq!((f.next, f.jitter_ns), (2 + MAX_AHEAD, 0.0));
    }

    /// Forged datagrams during a real udp-stream run: a stranger's are dropped
    /// as `stranger`; ones from an admitted address (as a spoofer would send)
    /// numbered 2^63 are `stray`, and loss stays what the real sender's is.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forged_datagrams_do_not_pollute_a_udp_stream() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let fields = "traffic: udp-stream, rate: 2000/s, message_size: 200";
        let mut sc = test_ctx(fields);
        sc.clients = Arc::new(vec![ip]);
        let served = Stream.serve(ip, sc.clone()).unwrap();
        let server = tokio::spawn(served.task);
        let to = SocketAddr::new(ip, served.port);
        let c = test_ctx(fields);
        c.t0.set(Instant::now()).unwrap();
        let client = tokio::spawn(Stream.client(to, c.clone()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut forged = vec![0u8; 200];
        forged[..8].copy_from_slice(&(1u64 << 63).to_be_bytes());
        let stranger = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        stranger.send_to(&forged, to).await.unwrap();
        for _ in 0..2 {
            let spoofer = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            spoofer.send_to(&forged, to).await.unwrap();
            spoofer.send_to(&forged, to).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.stop.cancel();
        client.await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        sc.stop.cancel();
        server.await.unwrap();
        let w = sc.rec.take();
        let u = w.udp.expect("udp stats");
        assert!(u.received > 100, "{u:?}");
        assert!(u.lost < u.received / 10, "{u:?}");
        let e = &w.counters.errors;
        assert_eq!(
            (e.get("stranger"), e.get("stray")),
            (Some(&1), Some(&4)),
            "{e:?}"
        );
    }

    #[test]
    fn far_jumps_do_not_misreport_duplicates() {
        let mut f = Flow::default();
        f.on_datagram(0, 0, 0);
        assert_eq!(
            f.on_datagram(3 * WINDOW, 0, 0),
            Arrival::Gap(3 * WINDOW - 1)
        );
        // An old sequence number beyond the window is a late arrival, not a duplicate.
        assert_eq!(f.on_datagram(5, 0, 0), Arrival::Reordered);
        assert_eq!(f.on_datagram(3 * WINDOW - 1, 0, 0), Arrival::Reordered);
        assert_eq!(f.on_datagram(3 * WINDOW - 1, 0, 0), Arrival::Duplicate);
    }
}

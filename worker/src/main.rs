//! `cnibench-worker`: flags in, library out.

use anyhow::{Context, bail};
use clap::Parser;
use cnibench_worker::control::{self, Config};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Traffic worker for cnibench: takes jobs from an authenticated coordinator.
#[derive(Debug, Parser)]
#[command(
    version,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Control address to listen on (data-plane servers bind on the same IP).
    #[arg(long, value_name = "ADDR:PORT", required = true)]
    listen: Option<SocketAddr>,
    /// File holding the shared token (whitespace trimmed).
    #[arg(long, value_name = "FILE", required = true)]
    token_file: Option<PathBuf>,
    /// Node name to report (default: $NODE_NAME, else the host name).
    #[arg(long)]
    node: Option<String>,
    /// IP that data-plane servers bind to and clients target, when listening on
    /// 0.0.0.0/:: (default: $POD_IP).
    #[arg(long, value_name = "IP")]
    advertise: Option<IpAddr>,
    /// CNI / datapath label to report (e.g. flannel-vxlan, host-gw); without it,
    /// the CNI is detected from --cni-dir.
    #[arg(long)]
    cni: Option<String>,
    /// The node's CNI configuration directory (read only).
    #[arg(long, default_value = "/etc/cni/net.d", value_name = "DIR")]
    cni_dir: PathBuf,
    /// Stop all traffic when the coordinator is silent this long. A coordinator
    /// that exits or dies closes the connection, which stops traffic at once; this
    /// covers silent loss (partitions), long enough to ride out a link flap.
    #[arg(long, default_value = "10s")]
    dead_man: cnibench_proto::units::Dur,
    /// Networks clients may target (CIDR, repeatable or comma separated); without
    /// it, only the run's own workers.
    #[arg(long, value_delimiter = ',', value_name = "CIDR")]
    allow: Vec<cnibench_worker::limits::Cidr>,
    /// Highest request/datagram/write rate this worker generates over all its jobs
    /// (e.g. 100000/s); a bitrate is converted with the job's sizes; closed-loop
    /// (rate: max) jobs are refused when set.
    #[arg(long, value_name = "RATE")]
    max_rate: Option<cnibench_proto::units::Rate>,
    /// Highest bitrate this worker generates over all its jobs (e.g. 10Gbit/s); a
    /// request or datagram rate is converted with the job's sizes.
    #[arg(long, value_name = "BITRATE")]
    max_bitrate: Option<cnibench_proto::units::Rate>,
    /// Longest job (warm-up + duration) accepted.
    #[arg(long, default_value = "24h", value_name = "DURATION")]
    max_duration: cnibench_proto::units::Dur,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Run one traffic kind's server alone, without a coordinator, for other
    /// tools' clients (e.g. wrk against http1, h2load against http2). Prints the
    /// bound address on stderr, serves until the duration is over or a signal,
    /// then prints what it served.
    Serve {
        /// Traffic kind (plan spelling: http1, http2, tcp-rr...).
        traffic: String,
        /// IP to bind; the port is chosen by the kernel and printed.
        #[arg(long, value_name = "IP")]
        listen: IpAddr,
        /// How long to serve.
        #[arg(long, default_value = "60s")]
        duration: cnibench_proto::units::Dur,
        /// Response payload size (plan spelling, e.g. 13 or 1KiB).
        #[arg(long, default_value = "13")]
        response_size: String,
    },
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cnibench-worker: error: {e:#}");
            ExitCode::from(e.downcast_ref::<Usage>().map_or(1, |_| 64))
        }
    }
}

/// A configuration error (exit code 64).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// `serve`: one engine's server, standalone.
fn serve_alone(
    traffic: &str,
    ip: IpAddr,
    duration: Duration,
    response_size: &str,
) -> anyhow::Result<()> {
    use cnibench_worker::serve::{Standalone, serve};
    let what = Standalone::new(traffic, response_size).map_err(|e| Usage(format!("{e}")))?;
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async move {
        let stop = tokio_util::sync::CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            cnibench_net::shutdown_signal().await;
            s.cancel();
        });
        let w = serve(what, ip, duration, stop, |port| {
            eprintln!(
                "cnibench-worker: serving {traffic} on {}",
                std::net::SocketAddr::new(ip, port)
            );
        })
        .await
        .with_context(|| format!("cannot serve {traffic} on {ip}"))?;
        let c = &w.counters;
        eprintln!(
            "cnibench-worker: served {} requests on {} connections, {} bytes in, {} bytes out, errors {:?}",
            c.transactions, c.connections, c.bytes_received, c.bytes_sent, c.errors
        );
        Ok(())
    })
}

fn run(args: Args) -> anyhow::Result<()> {
    if let Some(Command::Serve {
        traffic,
        listen,
        duration,
        response_size,
    }) = &args.command
    {
        return serve_alone(traffic, *listen, duration.0, response_size);
    }
    let (Some(listen), Some(token_file)) = (args.listen, args.token_file.as_ref()) else {
        bail!(Usage("--listen and --token-file are required".into()));
    };
    let token = std::fs::read(token_file)
        .map_err(|e| Usage(format!("--token-file {}: {e}", token_file.display())))?;
    let token = token.trim_ascii().to_vec();
    if token.is_empty() {
        bail!(Usage(format!(
            "--token-file {}: file is empty",
            token_file.display()
        )));
    }
    let ip = listen.ip();
    let data_ip = match args.advertise {
        Some(a) => a,
        None if !ip.is_unspecified() => ip,
        None => std::env::var("POD_IP")
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Usage("listening on an unspecified address needs --advertise IP or $POD_IP".into())
            })?,
    };
    if args.dead_man.0 < Duration::from_millis(100) {
        bail!(Usage("--dead-man must be at least 100ms".into()));
    }
    let node = args
        .node
        .or_else(|| std::env::var("NODE_NAME").ok())
        .unwrap_or_else(cnibench_net::sysinfo::hostname);
    let mut info = cnibench_worker::local_info(data_ip, &node, "unknown");
    match args.cni {
        Some(label) => info.cni = label,
        None => {
            let detected = cnibench_worker::cni::detect_from_dir(&args.cni_dir);
            info.cni = detected.name;
            info.cni_mode = detected.mode;
            info.mtu = info.mtu.or(detected.mtu);
        }
    }
    use cnibench_proto::units::Rate;
    let max_rate = match args.max_rate {
        None => None,
        Some(Rate::PerSecond(r)) => Some(r),
        Some(other) => bail!(Usage(format!(
            "--max-rate {other}: give a rate like 100000/s"
        ))),
    };
    let max_bitrate = match args.max_bitrate {
        None => None,
        Some(Rate::BitsPerSecond(b)) => Some(b),
        Some(other) => bail!(Usage(format!(
            "--max-bitrate {other}: give a bitrate like 10Gbit/s"
        ))),
    };
    let limits = cnibench_worker::limits::Limits {
        allow: args.allow,
        max_rate,
        max_bitrate,
        max_duration: Some(args.max_duration.0),
    };
    let cfg = Config {
        token,
        info,
        dead_man: args.dead_man.0,
        limits,
    };
    let rt = tokio::runtime::Runtime::new().context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let bound = listener.local_addr().context("listener address")?;
        eprintln!(
            "cnibench-worker: listening on {bound} (node {node}, data ip {data_ip}, cni {})",
            cfg.info.cni
        );
        let shutdown = tokio_util::sync::CancellationToken::new();
        let s = shutdown.clone();
        tokio::spawn(async move {
            cnibench_net::shutdown_signal().await;
            eprintln!("cnibench-worker: signal received, stopping traffic and exiting");
            s.cancel();
        });
        control::serve(listener, cfg.into(), shutdown).await;
        // Give sessions a moment to tell their coordinator.
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok(())
    })
}

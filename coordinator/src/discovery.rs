//! Where the workers are: `--workers` entries are `HOST:PORT` addresses, or
//! `dns:NAME:PORT`, which resolves every address of NAME (a Kubernetes headless
//! Service answers with one A/AAAA record per ready worker pod). Resolved
//! addresses are sorted, so the client placement (first worker) is stable.

use anyhow::{Context, anyhow};

/// Expand `dns:` entries into one `IP:PORT` per resolved address.
pub async fn resolve(workers: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for w in workers {
        let Some(rest) = w.strip_prefix("dns:") else {
            out.push(w.clone());
            continue;
        };
        let (name, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("{w}: expected dns:NAME:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| anyhow!("{w}: bad port `{port}`"))?;
        let mut addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name, port))
            .await
            .with_context(|| format!("{w}: cannot resolve {name}"))?
            .collect();
        if addrs.is_empty() {
            return Err(anyhow!(
                "{w}: {name} has no addresses (no worker pods ready?)"
            ));
        }
        addrs.sort();
        addrs.dedup();
        out.extend(addrs.iter().map(|a| a.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plain_and_dns_entries() {
        let got = resolve(&["127.0.0.2:7000".into(), "dns:localhost:7001".into()])
            .await
            .unwrap();
        assert_eq!(got[0], "127.0.0.2:7000");
        assert!(got[1..].iter().all(|a| a.ends_with(":7001")), "{got:?}");
        assert!(got.iter().any(|a| a == "127.0.0.1:7001"), "{got:?}");
        assert!(resolve(&["dns:localhost".into()]).await.is_err());
        assert!(resolve(&["dns:localhost:http".into()]).await.is_err());
        let e = resolve(&["dns:no-such-host.invalid:7000".into()])
            .await
            .unwrap_err();
        assert!(format!("{e:#}").contains("no-such-host.invalid"), "{e:#}");
    }
}

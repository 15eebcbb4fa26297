//! The `warpd` command line: argument definitions and the glue for each command. Commands other
//! than `serve` talk to the database directly (for ops on the host).
//!
//! Owns: user-facing command behaviour and output. Must not touch: routing rules or SQL details
//! (it calls `routing`, `db` and `provision`).

mod account;
mod deck;
mod user;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, LogFormat};
use crate::routing::DipRequest;

#[derive(Parser, Debug)]
#[command(
    name = "warpd",
    version,
    about = "Control-plane daemon for wholesale voice carriers"
)]
pub struct Cli {
    /// Config file (TOML); keys can be overridden with WARPD_<SECTION>__<KEY>
    #[arg(
        long,
        short,
        global = true,
        env = "WARPD_CONFIG",
        default_value = "/etc/warpd/warpd.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the daemon: migrate, load the routing snapshot, serve dips
    Serve,
    /// Apply pending database migrations
    Migrate,
    /// Apply a declarative provisioning file (TOML or YAML)
    Apply {
        file: PathBuf,
        /// show what would change without changing anything
        #[arg(long)]
        dry_run: bool,
        /// who the audit log names for this apply's changes (default `cli:$USER`)
        #[arg(long)]
        actor: Option<String>,
    },
    /// Simulate a dip against the current database and print every candidate route
    Route {
        #[arg(long)]
        ban: Option<String>,
        #[arg(long)]
        src_ip: Option<std::net::IpAddr>,
        #[arg(long)]
        ani: String,
        #[arg(long)]
        dnis: String,
        #[arg(long)]
        lrn: Option<String>,
        #[arg(long)]
        max_results: Option<u16>,
    },
    /// Ask every warpd on this database to bring its routing snapshot up to date now (no build
    /// when the routing data version has not moved)
    Reload {
        /// rebuild even if the routing data version has not moved
        #[arg(long)]
        full: bool,
    },
    /// Validate the config file and print the effective configuration
    CheckConfig,
    /// Rate decks: import, versions, diff, rollback, activate, export, margins, shadow
    Deck {
        #[command(subcommand)]
        cmd: deck::DeckCmd,
    },
    /// Phone numbers (DIDs): bulk import from CSV
    Numbers {
        #[command(subcommand)]
        cmd: NumbersCmd,
    },
    /// Credit accounts: show, set terms, top up, adjust
    Account {
        #[command(subcommand)]
        cmd: account::AccountCmd,
    },
    /// Admin API bearer tokens
    Token {
        #[command(subcommand)]
        cmd: deck::TokenCmd,
    },
    /// Users of the ops console (`/console/` on the admin listener)
    User {
        #[command(subcommand)]
        cmd: user::UserCmd,
    },
    /// CDRs in the database
    Cdr {
        #[command(subcommand)]
        command: CdrCommand,
    },
    /// STIR/SHAKEN: check the signing key and certificate
    Stir {
        #[command(subcommand)]
        cmd: StirCmd,
    },
}

#[derive(Subcommand, Debug)]
pub enum StirCmd {
    /// Check the key/certificate pair (the config's `[stir]`, or the files given): key file
    /// permissions, an EC P-256 key, the certificate's key, and print its expiry; exits non-zero
    /// on a problem or an expired certificate
    Check {
        #[arg(long)]
        key: Option<PathBuf>,
        #[arg(long)]
        cert: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NumbersCmd {
    /// Import numbers from a CSV file (columns in docs/PROVISIONING.md): every line checked,
    /// nothing applied on any problem, else one upsert in one transaction
    Import {
        file: PathBuf,
        /// check and count without changing anything
        #[arg(long)]
        dry_run: bool,
        /// who the audit log names (default `cli:$USER`)
        #[arg(long)]
        actor: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CdrCommand {
    /// Write matching CDRs to stdout (CSV with a header, or one JSON object per line)
    Export {
        /// start of the time range (RFC 3339 or unix seconds), inclusive
        #[arg(long)]
        from: Option<String>,
        /// end of the time range, exclusive
        #[arg(long)]
        to: Option<String>,
        #[arg(long)]
        ban: Option<String>,
        #[arg(long)]
        route: Option<String>,
        #[arg(long)]
        vendor: Option<String>,
        /// answered | busy | no_answer | cancelled | failed
        #[arg(long)]
        disposition: Option<String>,
        #[arg(long)]
        ani_prefix: Option<String>,
        #[arg(long)]
        dnis_prefix: Option<String>,
        /// csv | json
        #[arg(long, default_value = "csv")]
        format: String,
    },
}

/// The log filter: `RUST_LOG` if set and valid, else the configured level, else `info`; the
/// database driver is capped at `info` whatever was asked, because at `debug` tokio-postgres
/// logs every statement's parameters (phone numbers, token hashes).
fn log_filter(env: Option<&str>, level: &str) -> tracing_subscriber::EnvFilter {
    let filter = env
        .and_then(|e| tracing_subscriber::EnvFilter::try_new(e).ok())
        .or_else(|| tracing_subscriber::EnvFilter::try_new(level).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("info"));
    match "tokio_postgres=info".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    }
}

/// Sets up tracing from the config (RUST_LOG wins); numbers are masked unless log.log_numbers.
pub fn init_logging(cfg: Option<&Config>, default_level: &str) {
    let level = cfg.map(|c| c.log.level.as_str()).unwrap_or(default_level);
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), level);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match cfg.map(|c| c.log.format).unwrap_or(LogFormat::Text) {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    crate::numbering::set_log_numbers(cfg.is_some_and(|c| c.log.log_numbers));
}

pub async fn main_with(cli: Cli) -> anyhow::Result<()> {
    let config =
        Config::load(&cli.config).with_context(|| format!("config {}", cli.config.display()))?;
    match cli.command {
        Command::Serve => {
            init_logging(Some(&config), "info");
            let (k, a) = (config.server.kamailio_addr()?, config.server.admin_addr()?);
            let listeners = crate::api::Listeners {
                kamailio: tokio::net::TcpListener::bind(k)
                    .await
                    .with_context(|| format!("bind {k} (server.kamailio_listen)"))?,
                admin: tokio::net::TcpListener::bind(a)
                    .await
                    .with_context(|| format!("bind {a} (server.admin_listen)"))?,
                kamailio_resp: crate::api::RespListener::bind(&config.server).await?,
            };
            let shutdown = CancellationToken::new();
            spawn_signal_handler(shutdown.clone());
            crate::server::run(config, listeners, shutdown).await?;
        }
        Command::Migrate => {
            init_logging(None, "warn");
            let mut client = crate::db::connect(&config.database.url).await?;
            let applied = crate::db::migrate::migrate(&mut client).await?;
            if applied.is_empty() {
                println!("database schema is up to date");
            }
            for m in applied {
                println!("applied {m}");
            }
        }
        Command::Apply {
            file,
            dry_run,
            actor,
        } => {
            init_logging(None, "warn");
            let mut client = crate::db::connect(&config.database.url).await?;
            crate::db::migrate::migrate(&mut client).await?;
            let actor = actor.unwrap_or_else(deck::actor);
            let plan = crate::provision::apply_by(&mut client, &file, dry_run, &actor).await?;
            print!("{plan}");
            if dry_run {
                println!("(dry run: nothing was changed)");
            }
        }
        Command::Numbers {
            cmd:
                NumbersCmd::Import {
                    file,
                    dry_run,
                    actor,
                },
        } => {
            init_logging(None, "warn");
            let input = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut client = crate::db::connect(&config.database.url).await?;
            crate::db::migrate::migrate(&mut client).await?;
            let actor = actor.unwrap_or_else(deck::actor);
            let report = crate::provision::numbers_import::import(
                &mut client,
                input,
                &file.display().to_string(),
                &actor,
                dry_run,
            )
            .await?;
            println!("{report}");
        }
        Command::Route {
            ban,
            src_ip,
            ani,
            dnis,
            lrn,
            max_results,
        } => {
            init_logging(None, "warn");
            if ban.is_none() && src_ip.is_none() {
                anyhow::bail!("give --ban or --src-ip to identify the customer");
            }
            let client = crate::db::connect(&config.database.url).await?;
            let snap = crate::db::loader::load_snapshot(&client, config.routing.clone()).await?;
            let req = DipRequest {
                ban,
                src_ip,
                trunk: None,
                ani,
                dnis,
                lrn,
                call_id: None,
                max_results,
                identity: None,
            };
            let now = chrono::Utc::now().timestamp();
            let sim = crate::routing::simulate(&snap, &req, now);
            println!("{}", serde_json::to_string_pretty(&sim)?);
        }
        Command::Reload { full } => {
            init_logging(None, "warn");
            let client = crate::db::connect(&config.database.url).await?;
            let payload = if full {
                crate::db::reload::FULL_RELOAD
            } else {
                "manual reload"
            };
            client
                .execute("SELECT pg_notify('warpd_routing', $1)", &[&payload])
                .await
                .context("send reload notification")?;
            println!(
                "{}",
                if full {
                    "full reload requested (every warpd listening on this database rebuilds its snapshot)"
                } else {
                    "reload requested (every warpd listening on this database rebuilds its snapshot \
                     if the routing data changed since it was read; --full rebuilds anyway)"
                }
            );
        }
        Command::Cdr {
            command:
                CdrCommand::Export {
                    from,
                    to,
                    ban,
                    route,
                    vendor,
                    disposition,
                    ani_prefix,
                    dnis_prefix,
                    format,
                },
        } => {
            use crate::cdr::query;
            use tokio::io::AsyncWriteExt;
            init_logging(None, "warn");
            let format = query::Format::parse(&format)?;
            let time = |f: &'static str, v: Option<String>| -> anyhow::Result<_> {
                Ok(match v {
                    Some(v) => Some(query::parse_time(f, &v)?),
                    None => None,
                })
            };
            let strip = |v: Option<String>| v.map(|s| s.trim_start_matches('+').to_string());
            let filter = query::CdrFilter {
                from: time("from", from)?,
                to: time("to", to)?,
                ban,
                route,
                vendor,
                disposition,
                ani_prefix: strip(ani_prefix),
                dnis_prefix: strip(dnis_prefix),
                direction: None,
                trunk: None,
                after: None,
            };
            let client = crate::db::connect(&config.database.url).await?;
            let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
            let export =
                tokio::spawn(async move { query::export(&client, &filter, format, tx).await });
            let mut out = tokio::io::stdout();
            while let Some(chunk) = rx.recv().await {
                out.write_all(&chunk).await.context("write to stdout")?;
            }
            out.flush().await?;
            let n = export
                .await
                .context("export task")?
                .map_err(|e| anyhow::anyhow!(crate::db::pg_detail(&e)))?;
            eprintln!("{n} CDRs exported");
        }
        Command::Deck { cmd } => {
            init_logging(None, "warn");
            deck::run_deck(&config, cmd).await?;
        }
        Command::User { cmd } => {
            init_logging(None, "warn");
            user::run_user(&config, cmd).await?;
        }
        Command::Account { cmd } => {
            init_logging(None, "warn");
            account::run_account(&config, cmd).await?;
        }
        Command::Token { cmd } => {
            init_logging(None, "warn");
            deck::run_token(&config, cmd).await?;
        }
        Command::Stir {
            cmd: StirCmd::Check { key, cert },
        } => {
            init_logging(None, "warn");
            let cfg = match (key, cert, config.stir.clone()) {
                (Some(key_file), Some(cert_file), _) => crate::stir::StirConfig {
                    key_file,
                    cert_file,
                    expiry_warn_days: 30,
                },
                (k, c, Some(mut s)) => {
                    s.key_file = k.unwrap_or(s.key_file);
                    s.cert_file = c.unwrap_or(s.cert_file);
                    s
                }
                _ => anyhow::bail!("no [stir] in the config: give --key and --cert"),
            };
            let info = crate::stir::check(&cfg)?;
            let now = chrono::Utc::now().timestamp();
            println!("{}", crate::stir::describe(&info, now));
            if info.days_left(now) < 0 {
                anyhow::bail!("the STIR/SHAKEN certificate has expired");
            }
        }
        Command::CheckConfig => {
            // the files the config names: listener certificates/keys, database sslrootcert
            crate::api::ListenersTls::load(&config.server, &prometheus::Registry::new())?;
            crate::db::target(&config.database.url)?;
            println!("config {} is valid", cli.config.display());
            let mut shown = config.clone();
            shown.database.url = crate::config::redact_url(&shown.database.url);
            // secrets are shown as set, never printed
            let hide = |s: &mut Option<String>| {
                if s.is_some() {
                    *s = Some("***".into());
                }
            };
            hide(&mut shown.server.kamailio_secret);
            hide(&mut shown.cdr.api_token);
            println!("{}", toml::to_string_pretty(&shown)?);
        }
    }
    Ok(())
}

fn spawn_signal_handler(shutdown: CancellationToken) {
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = tokio::signal::ctrl_c() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutting down");
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::log_filter;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_database_driver_never_logs_parameters_even_at_debug() {
        for env in [Some("debug"), Some("trace,tokio_postgres=trace"), None] {
            let buf = Buf::default();
            let w = buf.clone();
            let sub = tracing_subscriber::fmt()
                .with_env_filter(log_filter(env, "debug"))
                .with_writer(move || w.clone())
                .finish();
            tracing::subscriber::with_default(sub, || {
                tracing::debug!(target: "tokio_postgres::query", "executing with parameters: [\"+12125551234\"]");
                tracing::info!(target: "tokio_postgres::connection", "connection closed");
                tracing::debug!(target: "warpd::db", "our own debug line");
            });
            let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
            assert!(!out.contains("12125551234"), "{env:?}: {out}");
            assert!(out.contains("connection closed"), "{env:?}: {out}");
            assert!(out.contains("our own debug line"), "{env:?}: {out}");
        }
    }
}

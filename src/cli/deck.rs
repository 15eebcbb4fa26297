//! `warpd deck …` and `warpd token …`: argument definitions and glue. They talk to the database
//! directly (ops on the host); the admin API offers the same over HTTP.
//!
//! Owns: the user-facing shape of these commands. Must not touch: deck semantics (see `deck`).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::config::Config;
use crate::deck::{self, ImportOptions, Mapping};

#[derive(Subcommand, Debug)]
pub enum DeckCmd {
    /// Import a vendor deck (CSV, CSV.gz or XLSX) for a route as a new version
    Import {
        #[arg(long)]
        route: String,
        #[arg(long)]
        file: PathBuf,
        /// when the version takes over, e.g. 2026-12-01T00:00Z (default: now)
        #[arg(long)]
        effective: Option<String>,
        /// validate, compare and warn; change nothing
        #[arg(long)]
        dry_run: bool,
        /// load the good rows and report the bad ones (default: one bad row refuses the import)
        #[arg(long)]
        skip_invalid: bool,
        /// store the version without routing it (shadow it, then `deck activate`)
        #[arg(long)]
        stage: bool,
        /// column mapping, e.g. "Dial Code=prefix,Price=rate" (fields: prefix, npanxx, ocn, lata,
        /// description, interstate, intrastate, local, rate, min_seconds, inc_seconds,
        /// effective_from, effective_until, ignore)
        #[arg(long)]
        map: Option<String>,
        /// save --map with the route's vendor for its next decks
        #[arg(long)]
        save_mapping: bool,
        /// XLSX sheet to read (required when the workbook has several)
        #[arg(long)]
        sheet: Option<String>,
        /// warn when a rate moves more than this percent against the previous version
        #[arg(long, default_value_t = 25.0)]
        warn_pct: f64,
    },
    /// List a route's deck versions
    Versions {
        #[arg(long)]
        route: String,
    },
    /// Compare two versions (default: the newest against the one before it)
    Diff {
        #[arg(long)]
        route: String,
        #[arg(long)]
        from: Option<i64>,
        #[arg(long)]
        to: Option<i64>,
        /// rows of detail
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long, default_value_t = 25.0)]
        warn_pct: f64,
        /// order of the rows: key, change or pct (largest move first)
        #[arg(long, default_value = "key")]
        sort: String,
        /// continue after this cursor (the `next` of the page before)
        #[arg(long)]
        after: Option<String>,
    },
    /// Withdraw a live version (default: the newest); the route routes from the others again
    Rollback {
        #[arg(long)]
        route: String,
        #[arg(long)]
        version: Option<i64>,
    },
    /// Make a staged or rolled-back version live (optionally at a new effective time)
    Activate {
        #[arg(long)]
        route: String,
        #[arg(long)]
        version: i64,
        #[arg(long)]
        effective: Option<String>,
    },
    /// Write a version (default: the one in force now) as CSV in its imported layout
    Export {
        #[arg(long)]
        route: String,
        #[arg(long)]
        version: Option<i64>,
        /// output file (default: stdout)
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Margin report: sell rate per customer prefix against each allowed vendor's buy rate
    Margins {
        #[arg(long)]
        ban: Option<String>,
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
    /// Replay recent real dips against a candidate version and report what would change
    Shadow {
        /// candidate version id
        version: i64,
        #[arg(long)]
        route: String,
        /// at most this many recent dips (from dip_samples, written by the running warpd)
        #[arg(long, default_value_t = 10_000)]
        samples: i64,
        /// replay these dips instead (JSON lines of dip requests)
        #[arg(long)]
        dips: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Create an admin API token (printed once; only its SHA-256 is stored)
    Create {
        #[arg(long)]
        name: String,
        /// admin, ops or readonly
        #[arg(long)]
        role: String,
    },
    /// Revoke a token by name
    Revoke {
        #[arg(long)]
        name: String,
    },
}

/// Who the audit log names for a CLI change: `cli:$USER`.
pub(super) fn actor() -> String {
    format!(
        "cli:{}",
        std::env::var("USER").unwrap_or_else(|_| "unknown".into())
    )
}

fn when(s: &Option<String>) -> anyhow::Result<Option<chrono::DateTime<chrono::Utc>>> {
    s.as_deref()
        .map(|v| {
            deck::parse::parse_when(v)
                .map_err(anyhow::Error::msg)
                .and_then(|us| {
                    chrono::DateTime::from_timestamp_micros(us)
                        .ok_or_else(|| anyhow::anyhow!("{v:?} is out of range"))
                })
        })
        .transpose()
        .context("--effective")
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

pub(super) async fn connect(config: &Config) -> anyhow::Result<tokio_postgres::Client> {
    let mut client = crate::db::connect(&config.database.url).await?;
    crate::db::migrate::migrate(&mut client).await?;
    Ok(client)
}

pub async fn run_deck(config: &Config, cmd: DeckCmd) -> anyhow::Result<()> {
    let mut client = connect(config).await?;
    match cmd {
        DeckCmd::Import {
            route,
            file,
            effective,
            dry_run,
            skip_invalid,
            stage,
            map,
            save_mapping,
            sheet,
            warn_pct,
        } => {
            let f = std::fs::File::open(&file)
                .with_context(|| format!("cannot open {}", file.display()))?;
            let mut o = ImportOptions::new(&route, &file.display().to_string(), &actor());
            o.effective = when(&effective)?;
            o.dry_run = dry_run;
            o.skip_invalid = skip_invalid;
            o.stage = stage;
            o.save_mapping = save_mapping;
            o.sheet = sheet;
            o.warn_change_pct = warn_pct;
            if let Some(m) = map {
                o.mapping = Mapping::parse(&m)
                    .map_err(anyhow::Error::msg)
                    .context("--map")?;
            }
            let r = deck::store::import(&mut client, Box::new(f), &o).await?;
            print_json(&r)?;
            for w in &r.warnings {
                eprintln!("warning: {w}");
            }
            if r.dry_run {
                eprintln!("(dry run: nothing was changed)");
            } else {
                eprintln!(
                    "imported {} rows as version {} of route {} ({}, effective {}); {} bad rows skipped",
                    r.rows,
                    r.version.unwrap_or_default(),
                    r.route,
                    r.state,
                    r.effective_from,
                    r.skipped_rows
                );
            }
        }
        DeckCmd::Versions { route } => print_json(&deck::store::versions(&client, &route).await?)?,
        DeckCmd::Diff {
            route,
            from,
            to,
            limit,
            warn_pct,
            sort,
            after,
        } => {
            let sort = deck::DiffSort::parse(&sort)
                .with_context(|| format!("--sort {sort:?}: expected key, change or pct"))?;
            let page = deck::DiffPage { sort, after, limit };
            print_json(&deck::store::diff(&mut client, &route, from, to, warn_pct, &page).await?)?
        }
        DeckCmd::Rollback { route, version } => {
            let v = deck::store::rollback(&mut client, &route, version, &actor()).await?;
            println!("version {v} of route {route} rolled back");
        }
        DeckCmd::Activate {
            route,
            version,
            effective,
        } => print_json(
            &deck::store::activate(&mut client, &route, version, when(&effective)?, &actor())
                .await?,
        )?,
        DeckCmd::Export {
            route,
            version,
            out,
        } => {
            let n = match out {
                Some(path) => {
                    let f = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(f);
                    let n = deck::store::export(&client, &route, version, &mut w).await?;
                    w.flush()?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = std::io::BufWriter::new(stdout.lock());
                    let n = deck::store::export(&client, &route, version, &mut w).await?;
                    w.flush()?;
                    n
                }
            };
            eprintln!("exported {n} rows");
        }
        DeckCmd::Margins { ban, prefix, limit } => print_json(
            &deck::report::margins(&client, ban.as_deref(), prefix.as_deref(), limit).await?,
        )?,
        DeckCmd::Shadow {
            version,
            route,
            samples,
            dips,
        } => {
            let reqs: Vec<crate::routing::DipRequest> = match dips {
                Some(path) => {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read {}", path.display()))?;
                    text.lines()
                        .enumerate()
                        .filter(|(_, l)| !l.trim().is_empty())
                        .map(|(i, l)| {
                            crate::api::dip_from_json(l.as_bytes(), "dip").map_err(|e| {
                                anyhow::anyhow!("{} line {}: {e}", path.display(), i + 1)
                            })
                        })
                        .collect::<anyhow::Result<_>>()?
                }
                None => deck::diplog::load_samples(&client, samples).await?,
            };
            if reqs.is_empty() {
                anyhow::bail!("no recent dips to replay (warpd records them while serving; or give --dips FILE)");
            }
            let now = chrono::Utc::now().timestamp();
            let r = deck::report::shadow(
                &mut client,
                &route,
                version,
                &reqs,
                config.routing.clone(),
                now,
            )
            .await?;
            print_json(&r)?;
        }
    }
    Ok(())
}

pub async fn run_token(config: &Config, cmd: TokenCmd) -> anyhow::Result<()> {
    let client = connect(config).await?;
    match cmd {
        TokenCmd::Create { name, role } => {
            let t = crate::admin::create_token(&client, &name, &role, &actor()).await?;
            eprintln!("token {name} ({role}) created; it is shown once, keep it safe:");
            println!("{t}");
        }
        TokenCmd::Revoke { name } => {
            if crate::admin::revoke_token(&client, &name, &actor()).await? {
                println!("token {name} revoked");
            } else {
                anyhow::bail!("no live token named {name:?}");
            }
        }
    }
    Ok(())
}

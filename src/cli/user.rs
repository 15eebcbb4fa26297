//! `warpd user …`: accounts of the ops console (`crate::console::auth`). Passwords are read from
//! stdin (`--password-stdin`, one line) or generated (24 random characters, printed once);
//! never taken as an argument (it would show in `ps` and shell history).

use std::io::BufRead;

use clap::Subcommand;

use super::deck::{actor, connect};
use crate::config::Config;
use crate::console::auth;

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a console user (prints a generated password unless --password-stdin)
    Add {
        name: String,
        /// admin, ops or readonly (the admin API's roles)
        #[arg(long, default_value = "readonly")]
        role: String,
        /// read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a user's password (ends its sessions, lifts a lock-out)
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users: role, disabled, locked until, last sign-in
    List,
    /// Disable a user (ends its sessions); --enable turns it back on
    Disable {
        name: String,
        #[arg(long)]
        enable: bool,
    },
}

/// The password: stdin's first line, or a generated one (printed by the caller).
fn password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok((line.trim_end_matches(['\r', '\n']).to_string(), false));
    }
    // 24 characters from 144 random bits (base64url)
    let mut b = [0u8; 18];
    getrandom::fill(&mut b).map_err(auth::AuthError::Random)?;
    use base64::Engine as _;
    Ok((
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
        true,
    ))
}

pub async fn run_user(config: &Config, cmd: UserCmd) -> anyhow::Result<()> {
    let client = connect(config).await?;
    match cmd {
        UserCmd::Add {
            name,
            role,
            password_stdin,
        } => {
            let (pw, generated) = password(password_stdin)?;
            auth::add_user(&client, &name, &role, &pw, &actor()).await?;
            eprintln!("console user {name} ({role}) created");
            if generated {
                eprintln!("its password (shown once):");
                println!("{pw}");
            }
        }
        UserCmd::Passwd {
            name,
            password_stdin,
        } => {
            let (pw, generated) = password(password_stdin)?;
            auth::set_password(&client, &name, &pw, &actor()).await?;
            eprintln!("password of {name} changed; its sessions ended");
            if generated {
                println!("{pw}");
            }
        }
        UserCmd::List => {
            println!(
                "{:<24} {:<9} {:<8} {:<21} last sign-in",
                "name", "role", "disabled", "locked until"
            );
            for u in auth::list_users(&client).await? {
                println!(
                    "{:<24} {:<9} {:<8} {:<21} {}",
                    u.name,
                    u.role,
                    u.disabled,
                    u.locked_until.unwrap_or_default(),
                    u.last_login_at.unwrap_or_default()
                );
            }
        }
        UserCmd::Disable { name, enable } => {
            auth::disable_user(&client, &name, !enable, &actor()).await?;
            println!("{name} {}", if enable { "enabled" } else { "disabled" });
        }
    }
    Ok(())
}

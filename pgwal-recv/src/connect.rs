//! What every subcommand does the same way: the connection options, the password prompt,
//! the runtime.

use pgwire_repl::{Client, Config, Error};

use crate::cli::ConnOptions;
use crate::output::{error, report};

/// Runs `main` on a single-threaded runtime and returns its exit code.
pub fn block_on<F: std::future::Future<Output = i32>>(main: F) -> i32 {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(main),
        Err(e) => {
            error(format!("could not start the runtime: {e}"));
            1
        }
    }
}

/// Runs `work` on a single-threaded runtime of its own (a helper thread's).
pub fn block_on_result<T, F: std::future::Future<Output = Result<T, String>>>(
    work: F,
) -> Result<T, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the runtime: {e}"))?
        .block_on(work)
}

/// The connection options: `-d` first, then `-h`, `-p`, `-U` over it, then the environment;
/// `application_name` defaults to the program name.
pub fn config(o: &ConnOptions) -> Result<Config, Error> {
    let mut c = Config::parse(o.dbname.as_deref().unwrap_or(""))?;
    if let Some(h) = &o.host {
        c.set("host", h)?;
    }
    if let Some(p) = &o.port {
        c.set("port", p)?;
    }
    if let Some(u) = &o.username {
        c.set("user", u)?;
    }
    c.fallback_application_name = Some(crate::output::PROGNAME.to_owned());
    c.apply_env(|k| std::env::var(k).ok())?;
    Ok(c)
}

/// Connects; asks for a password on the terminal when the server wants one we lack (unless
/// `-w`), as libpq programs do. `replication` false makes a plain SQL connection. Warnings
/// from resolving the configuration (an ignored password file) are printed first, in our
/// style: they often explain the failure that follows.
pub async fn connect(
    config: &mut Config,
    o: &ConnOptions,
    replication: bool,
) -> Result<Client, String> {
    let attempt = |c: &Config| {
        let c = c.clone();
        async move {
            let params = c.resolve(replication)?;
            for w in &params.warnings {
                crate::output::warning(w);
            }
            Client::connect_params(&params, replication).await
        }
    };
    if o.password_prompt && config.password.is_none() {
        config.password = crate::prompt::password("Password: ");
    }
    match attempt(config).await {
        Err(e) if e.needs_password() && !o.no_password => {
            match crate::prompt::password("Password: ") {
                Some(pw) => {
                    config.password = Some(pw);
                    attempt(config).await.map_err(|e| report(&e))
                }
                None => Err(report(&e)),
            }
        }
        other => other.map_err(|e| report(&e)),
    }
}

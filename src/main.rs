//! The `mayfly` binary: logging, the command line and exit codes. Everything else is in the
//! library.

use std::process::ExitCode;

use clap::Parser;
use mayfly::cli::{Cli, Command, PASSPHRASE_ENV, PASSPHRASE_FILE_ENV, passphrase};
use mayfly::config::{Config, ConfigError, LogFormat};
use tracing_subscriber::EnvFilter;

/// Exit codes: 0 success, 1 a runtime failure, 2 bad configuration or usage.
const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;

/// mimalloc: less CPU per certificate than glibc's malloc (BENCHMARKS.md, allocator A/B).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // One crypto provider, installed explicitly (CRATES.md): aws-lc-rs.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The admin API refusing a request as malformed (400) is bad usage too.
            let bad_request = e
                .downcast_ref::<mayfly::admin::client::Refused>()
                .is_some_and(|refused| refused.status == 400);
            let code = if e.downcast_ref::<ConfigError>().is_some() || bad_request {
                EXIT_CONFIG
            } else {
                EXIT_RUNTIME
            };
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// Logs to standard error at the level `MAYFLY_LOG` sets (default `info`), as text or as one
/// JSON object per line.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("MAYFLY_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    mayfly::telemetry::log_subscriber(format, filter, std::io::stderr, ansi).init();
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // `serve` logs in its configured format, known once its configuration is read.
    if !matches!(cli.command, Command::Serve(_)) {
        init_logging(LogFormat::Text);
    }
    // An unreadable passphrase file stops every command before it could create keys
    // unencrypted or fail later to open encrypted ones.
    mayfly::cli::try_passphrase()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.config()?;
            init_logging(config.log.format);
            warn_if_unencrypted();
            if config.testing.nonce_reject_percent > 0 {
                eprintln!(
                    "warning: testing.nonce_reject_percent is {}: valid nonces are rejected on purpose",
                    config.testing.nonce_reject_percent
                );
            }
            let (app, tls) = mayfly::app::open(config, passphrase().as_deref()).await?;
            mayfly::server::serve(app, tls).await
        }
        Command::Init(args) => {
            let config = args.config()?;
            warn_if_unencrypted();
            let pass = passphrase();
            let outcome = mayfly::app::ensure_ca(&config, pass.as_deref())?;
            let issuer = mayfly::issuer::Issuer::load(&config.server.data_dir, pass.as_deref())?;
            issuer.ensure_server_certificate(
                &config.server.data_dir,
                &config.server.hostnames,
                time::OffsetDateTime::now_utc(),
            )?;
            let root = config.server.data_dir.join("root-ca.pem");
            match outcome {
                mayfly::issuer::InitOutcome::Created => {
                    println!("Created a CA in {}", config.server.data_dir.display())
                }
                mayfly::issuer::InitOutcome::Existing => println!(
                    "A CA already exists in {}; nothing changed",
                    config.server.data_dir.display()
                ),
            }
            println!("  trust root: {}", root.display());
            Ok(())
        }
        Command::Admin(args) => mayfly::admin::run(&args).await,
        Command::Renew(args) => match mayfly::renew::run(&args).await? {
            mayfly::renew::Finished::Ok => Ok(()),
            mayfly::renew::Finished::HookFailed => {
                // Documented exit code: renewed, but a post_renew hook failed.
                std::process::exit(mayfly::renew::EXIT_HOOK_FAILED)
            }
        },
        Command::Provisioner(command) => {
            print!(
                "{}",
                mayfly::provisioner::jwk::tool::run_provisioner(&command)?
            );
            Ok(())
        }
        Command::Token(args) => {
            let now = time::OffsetDateTime::now_utc();
            println!("{}", mayfly::provisioner::jwk::tool::run_token(&args, now)?);
            Ok(())
        }
        Command::Healthcheck(args) => {
            let config = args.config()?;
            if let Err(why) = mayfly::server::healthcheck(&config, args.live).await {
                eprintln!("{why}");
                std::process::exit(1)
            }
            Ok(())
        }
        Command::CheckConfig { file } => {
            let config = Config::load(Some(&file), figment::Figment::new())?;
            // The provisioners' own checks (keys, URLs, profiles against claims), as at start.
            let provisioners =
                mayfly::provisioner::Provisioners::from_config(&config, &reqwest::Client::new())
                    .map_err(mayfly::config::ConfigError)?;
            println!("{} is valid", file.display());
            println!("  directory would be {}/directory", config.base_url());
            for name in provisioners.acme_names() {
                if name != mayfly::provisioner::DEFAULT_ACME {
                    println!(
                        "  provisioner {name}: directory {}/acme/{name}/directory",
                        config.base_url()
                    );
                }
            }
            Ok(())
        }
    }
}

fn warn_if_unencrypted() {
    if passphrase().is_none() {
        eprintln!(
            "warning: neither {PASSPHRASE_ENV} nor {PASSPHRASE_FILE_ENV} is set; CA keys created now are stored unencrypted (mode 0600)"
        );
    }
}

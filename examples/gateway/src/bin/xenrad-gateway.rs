//! `xenrad-gateway`: all five Xenrad endpoints from one command (see `--help`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = xenrad_gateway::backup::run_subcommand(&args) {
        return code;
    }
    let config = match xenrad_gateway::Config::load() {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
    let logs = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XENRAD_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr);
    match config.log_format {
        // One JSON object per line, for log collectors.
        xenrad_gateway::LogFormat::Json => logs.json().init(),
        xenrad_gateway::LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("xenrad-gateway: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(xenrad_gateway::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenrad-gateway: {}", with_causes(&*e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes (`source()` chain), `: `-separated.
fn with_causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

//! `spool`: the Spool command-line tool. A thin shim over
//! [`spool_dashboard::cli::run_with`] that may ask before a bulk delete on
//! a terminal; exit 0 ok, 1 operational error, 2 usage error.

use std::process::ExitCode;

fn main() -> ExitCode {
    let rt = match spool_dashboard::cli::runtime(false) {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(spool_dashboard::cli::run_with(
        std::env::args_os(),
        &mut std::io::stdout(),
        &mut std::io::stderr(),
        spool_dashboard::cli::Prompt::Terminal,
    ));
    ExitCode::from(code)
}

//! `rush`: the rush simulator's command line. See `rush --help` and the library docs.

use clap::Parser;
use rush::report::EXIT_RUN_FAILED;
use rush::{Args, Config};

fn main() {
    let args = Args::parse();
    let json = args.json;
    let plot = args.plot.clone();
    let code = match Config::try_from(args).and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.runtime_threads())
            .enable_all()
            .build()
            .map_err(|e| rush::RushError::Config(format!("tokio runtime: {e}")))?;
        runtime.block_on(rush::run(&config))
    }) {
        Ok(report) => {
            if let Some(path) = &plot
                && let Err(e) = rush::plot::write_svg(&report, path)
            {
                eprintln!("rush: {e}");
            }
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("rush: cannot write the report as JSON: {e}");
                        std::process::exit(EXIT_RUN_FAILED);
                    }
                }
            } else {
                print!("{}", report.to_text());
            }
            report.exit_code()
        }
        Err(e) => {
            eprintln!("rush: {e}");
            EXIT_RUN_FAILED
        }
    };
    std::process::exit(code);
}

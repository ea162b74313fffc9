//! `cli_command`: a plain `wasi:cli/command` component (exports `wasi:cli/run`, not
//! `wasi:http/incoming-handler`). Updraft must reject it at upload with a 400 that names the
//! missing export.

fn main() {
    println!("I am a command, not an HTTP handler");
}

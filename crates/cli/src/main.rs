//! `keyplane`: the server, the admin commands, and (later) the guest agent, in one binary.
#![forbid(unsafe_code)]

mod account;
mod agent;
mod agent_token;
mod config;
mod console;
mod events;
mod image;
mod listen;
mod master_key;
mod ops_wait;
mod read;
mod serve;
mod tls;

use clap::{Parser, Subcommand};

// Why: the server allocates a String per column of every row it reads and answers; mimalloc's
// thread-local free lists make that markedly cheaper than glibc's malloc under many connections.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keyplane: a self-hosted control plane for SSH key pairs and the Linux instances they are
/// bound to, speaking the Tencent Cloud and Alibaba Cloud APIs.
#[derive(Debug, Parser)]
#[command(name = "keyplane", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the API server (SQLite in the data directory, listening on 127.0.0.1 by default).
    Serve(serve::ServeArgs),
    /// Manage accounts and their API credentials (works while the server runs).
    #[command(subcommand)]
    Account(account::AccountCommand),
    /// Run the guest agent: keep this host's SSH keys and password switch as the server decides.
    Agent(agent::AgentArgs),
    /// Registration tokens for real hosts running `keyplane agent`.
    #[command(subcommand)]
    AgentToken(agent_token::AgentTokenCommand),
    /// The root filesystems Linux instances boot from: build, list, import.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// The web console: one-time login URLs.
    #[command(subcommand)]
    Console(console::ConsoleCommand),
    /// List an account's instances: state, address, bound keys, latest operation.
    Instances(read::ReadArgs),
    /// List an account's key pairs: fingerprints and the instances they are bound to.
    Keys(read::ReadArgs),
    /// The audit trail: every change and every refused request, newest first.
    Events(events::EventsArgs),
    /// Asynchronous operations on instances.
    #[command(subcommand)]
    Ops(read::OpsCommand),
    /// The server's TLS certificate authority.
    #[command(subcommand)]
    Tls(tls::TlsCommand),
    /// Print the default configuration file.
    DefaultConfig,
    /// Stage 1 of a sandbox instance's init (run by the server inside the instance's new
    /// namespaces, never by hand).
    #[command(hide = true)]
    SandboxInit {
        /// ID HOSTNAME ADDRESS LOWER DNS AGENT.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> std::process::ExitCode {
    // The helper that starts the host's SSH sessions inside a sandbox instance (started by its
    // init, never by hand) lives as long as the instance.
    // Why before the command line parser: the memory the parser takes would stay with it.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            keyplane_instances::sessions::SUBCOMMAND,
        ))
    {
        keyplane_instances::sessions::run();
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Account(cmd) => account::run(cmd),
        Command::Agent(args) => agent::run(args),
        Command::AgentToken(cmd) => agent_token::run(cmd),
        Command::Image(cmd) => image::run(cmd),
        Command::Tls(cmd) => tls::run(cmd),
        Command::Console(cmd) => console::run(cmd),
        Command::Instances(args) => read::instances(args),
        Command::Keys(args) => read::keys(args),
        Command::Events(args) => events::run(args),
        Command::Ops(cmd) => read::ops(cmd),
        Command::SandboxInit { args } => keyplane_instances::init::run(args),
        Command::DefaultConfig => {
            print!("{}", config::DEFAULT_CONFIG);
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyplane: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

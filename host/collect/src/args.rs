//! The options of `skoop collect` (also the `skoop-collect` binary).

use std::net::Ipv4Addr;
use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct CollectArgs {
    /// Node name (default: the hostname).
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,

    /// A pod netns to dump too, as NS/NAME=NETNS (a name under /run/netns or a path
    /// such as /proc/PID/ns/net); repeatable. Without it, pods are found through CRI.
    #[arg(long = "pod", value_name = "NS/NAME=NETNS")]
    pub pods: Vec<String>,

    /// Write the dump to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,

    #[command(subcommand)]
    pub action: Option<CollectCmd>,
}

#[derive(Debug, Subcommand)]
pub enum CollectCmd {
    /// Make a real connection attempt from a netns (a TCP connect, a UDP
    /// datagram and its reply, an SCTP INIT) and print the outcome as one JSON
    /// line: what `skoop diagnose --probe` runs in a collector pod. One flow,
    /// at most --count attempts, the first failure ends it.
    Probe(ProbeArgs),
}

/// The options of `skoop collect probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Probe from this pod's netns: NS/NAME (found through the node's CRI
    /// socket) or NS/NAME=NETNS.
    #[arg(long, value_name = "NS/NAME[=NETNS]", conflicts_with = "netns")]
    pub pod: Option<String>,

    /// Probe from this netns: a name under /run/netns or a path such as
    /// /proc/PID/ns/net (default: the collector's own, the node's host netns).
    #[arg(long, value_name = "NETNS")]
    pub netns: Option<String>,

    /// Send from this address (default: the one the kernel picks).
    #[arg(short = 's', long, value_name = "IP")]
    pub src: Option<Ipv4Addr>,

    /// Destination address.
    #[arg(short = 'd', long, value_name = "IP")]
    pub dst: Ipv4Addr,

    /// Destination port.
    #[arg(short = 'p', long, value_name = "PORT")]
    pub port: u16,

    /// Transport protocol: tcp (a connect), udp (a datagram and its reply) or
    /// sctp (an INIT, through a one-to-one socket).
    #[arg(long, value_name = "PROTO", default_value = "tcp")]
    pub protocol: String,

    /// How many attempts (1-20), each from a new socket; the first failure
    /// ends the probe.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub count: u32,

    /// How long each attempt waits (e.g. 3s, 500ms; at most 10s).
    #[arg(long, value_name = "DUR", default_value = "3s")]
    pub timeout: String,

    /// UDP: the destination answers any datagram (an echo or request-reply
    /// service), so no reply is a failure. Port 53 gets a DNS query, which a
    /// DNS server answers, without it; elsewhere silence proves nothing.
    #[arg(long)]
    pub expect_reply: bool,
}

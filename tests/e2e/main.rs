//! End-to-end tests: the real `skoop` binary on real bundles and real
//! extension components.

mod bad_input;
mod calico;
mod cloud;
mod cloud_aliyun;
mod cloud_aws;
mod common;
mod degrade;
mod demo;
mod harness;
mod help;
mod names;
mod nftables;
mod policy;
mod report_formats;
mod sandbox;

//! `log`: an extension's log lines, shown with `-v`.

use crate::bindings::{log as wl, types as wt};
use crate::convert::level_from;
use crate::sandbox::clean;
use crate::state::HostState;

impl HostState {
    fn log_log(&mut self, level: wt::Level, message: String) {
        if self.verbose {
            eprintln!(
                "[{}] {}: {}",
                self.name,
                level_from(level).name(),
                clean(&self.secrets, &message)
            );
        }
    }
}

lend!(wl {
    "log.log" fn log(level: wt::Level, message: String) -> () = log_log;
});

//! qmail-send's control files (qmail-send(8)), read once at start; SIGHUP rereads locals and
//! virtualdomains only.

use crate::rewrite::Rules;
use qmail_core::constmap::ConstMap;
use qmail_core::control::Controls;
use std::io;

/// Everything qmail-send reads from control/.
#[derive(Clone, Debug)]
pub struct Config {
    /// `queuelifetime`, seconds.
    pub lifetime: u64,
    /// `concurrencylocal`, `concurrencyremote`, capped at conf-spawn.
    pub concurrency: [usize; 2],
    /// `bouncefrom`.
    pub bouncefrom: Vec<u8>,
    /// `bouncehost`.
    pub bouncehost: Vec<u8>,
    /// `doublebounceto`.
    pub doublebounceto: Vec<u8>,
    /// `doublebouncehost`.
    pub doublebouncehost: Vec<u8>,
    /// Address rewriting tables.
    pub rules: Rules,
}

/// Why the controls could not be used.
#[derive(Debug)]
pub enum ConfigError {
    /// An I/O error other than "does not exist".
    Io(io::Error),
    /// Neither `locals` nor `me` exists.
    NoLocals,
}

impl From<io::Error> for ConfigError {
    fn from(e: io::Error) -> Self {
        ConfigError::Io(e)
    }
}

fn locals(controls: &Controls) -> Result<ConstMap, ConfigError> {
    match controls.list("locals")? {
        Some(l) => Ok(ConstMap::from_keys(&l)),
        None => match controls.me() {
            Some(me) => Ok(ConstMap::from_keys(&[me.to_vec()])),
            None => Err(ConfigError::NoLocals),
        },
    }
}

fn virtualdomains(controls: &Controls) -> io::Result<ConstMap> {
    Ok(ConstMap::from_pairs(
        &controls.list("virtualdomains")?.unwrap_or_default(),
    ))
}

impl Config {
    /// Reads every control file qmail-send uses.
    pub fn load(controls: &Controls) -> Result<Self, ConfigError> {
        let spawn = qmail_core::conf::SPAWN as u64;
        let rules = Rules {
            envnoathost: controls.line_me("envnoathost", b"envnoathost")?,
            locals: locals(controls)?,
            percenthack: ConstMap::from_keys(&controls.list("percenthack")?.unwrap_or_default()),
            virtualdomains: virtualdomains(controls)?,
        };
        Ok(Config {
            lifetime: controls.int("queuelifetime", 604_800)?,
            concurrency: [
                controls.int("concurrencylocal", 10)?.min(spawn) as usize,
                controls.int("concurrencyremote", 20)?.min(spawn) as usize,
            ],
            bouncefrom: controls.line_or("bouncefrom", b"MAILER-DAEMON")?,
            bouncehost: controls.line_me("bouncehost", b"bouncehost")?,
            doublebounceto: controls.line_or("doublebounceto", b"postmaster")?,
            doublebouncehost: controls.line_me("doublebouncehost", b"doublebouncehost")?,
            rules,
        })
    }

    /// SIGHUP: rereads locals, then virtualdomains; on failure the old table stays and the name of
    /// the file that failed is returned.
    pub fn reread(&mut self, controls: &Controls) -> Vec<&'static str> {
        let mut failed = Vec::new();
        match locals(controls) {
            Ok(l) => self.rules.locals = l,
            Err(_) => failed.push("locals"),
        }
        match virtualdomains(controls) {
            Ok(v) => self.rules.virtualdomains = v,
            Err(_) => failed.push("virtualdomains"),
        }
        failed
    }
}

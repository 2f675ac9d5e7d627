//! The commands' standard output and error. A closed pipe (`momentkv generate ... | head -c 1`)
//! ends the command quietly at its next write with exit 0, as a closed pipe ends Unix tools; any
//! other write failure (a full disk, `> /dev/full`) is an error naming standard output. Files
//! written so far stay whole: `eval` saves each result before reporting it.

use std::fmt;
use std::io::{self, Write};

use momentkv::Error;

/// Writes `args` to standard output and flushes it.
pub fn write(args: fmt::Arguments) -> Result<(), Error> {
    let mut out = io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.flush()).map_err(|e| {
        if e.kind() == io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        Error::Io {
            path: "standard output".into(),
            reason: e.to_string(),
        }
    })
}

/// Writes `args` to standard error; a failure there has nowhere to be reported, so it is
/// dropped rather than turned into a panic.
pub fn note(args: fmt::Arguments) {
    let _ = io::stderr().lock().write_fmt(args);
}

/// `print!` that returns the write's failure from the enclosing function.
macro_rules! out {
    ($($t:tt)*) => {
        $crate::out::write(format_args!($($t)*))?
    };
}

/// `println!` that returns the write's failure from the enclosing function.
macro_rules! outln {
    () => {
        $crate::out::write(format_args!("\n"))?
    };
    ($($t:tt)*) => {
        $crate::out::write(format_args!("{}\n", format_args!($($t)*)))?
    };
}

/// `eprintln!` that never panics.
macro_rules! noteln {
    () => {
        $crate::out::note(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::out::note(format_args!("{}\n", format_args!($($t)*)))
    };
}

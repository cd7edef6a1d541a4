//! The languages a function can be written in, as the seed lists them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    C,
    Rust,
    Go,
    Js,
    Python,
    Php,
    Html,
}

impl Lang {
    pub const ALL: [Lang; 7] = [
        Lang::C,
        Lang::Rust,
        Lang::Go,
        Lang::Js,
        Lang::Python,
        Lang::Php,
        Lang::Html,
    ];

    /// The name used in `?lang=` and metadata.
    pub fn name(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Rust => "rust",
            Lang::Go => "go",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::Php => "php",
            Lang::Html => "html",
        }
    }

    /// Extension of the stored source, `code.<ext>`.
    pub fn extension(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Rust => "rs",
            Lang::Go => "go",
            Lang::Js => "js",
            Lang::Python => "py",
            Lang::Php => "php",
            Lang::Html => "html",
        }
    }

    /// Compiled to WebAssembly and run in Wasmer.
    pub fn is_wasm(self) -> bool {
        matches!(self, Lang::C | Lang::Rust | Lang::Go)
    }
}

impl fmt::Display for Lang {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Lang {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lang = match s.to_ascii_lowercase().as_str() {
            "c" => Lang::C,
            "rust" | "rs" => Lang::Rust,
            "go" => Lang::Go,
            "js" | "javascript" | "node" => Lang::Js,
            "python" | "py" => Lang::Python,
            "php" => Lang::Php,
            "html" => Lang::Html,
            _ => {
                return Err(format!(
                    "unknown lang '{s}' (expected one of: c, rust, go, js, python, php, html)"
                ))
            }
        };
        Ok(lang)
    }
}

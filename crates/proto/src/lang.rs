//! The languages a function can be written in, as the seed lists them, and
//! how each one runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    C,
    Rust,
    Go,
    Js,
    Python,
    Php,
    Html,
    /// A prebuilt WASI preview1 module: validated and compiled to its
    /// artifact, never built.
    Wasm,
}

impl Lang {
    pub const ALL: [Lang; 8] = [
        Lang::C,
        Lang::Rust,
        Lang::Go,
        Lang::Js,
        Lang::Python,
        Lang::Php,
        Lang::Html,
        Lang::Wasm,
    ];

    /// The name used in `?lang=`, in metadata and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Lang::C => "c",
            Lang::Rust => "rust",
            Lang::Go => "go",
            Lang::Js => "js",
            Lang::Python => "python",
            Lang::Php => "php",
            Lang::Html => "html",
            Lang::Wasm => "wasm",
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
            Lang::Wasm => "wasm",
        }
    }

    /// The stored source's file name (a prebuilt module's is its module,
    /// `code.wasm`).
    pub fn source_file(self) -> String {
        format!("code.{}", self.extension())
    }

    /// Runs as a WebAssembly module of its own (`code.wasm`): compiled at
    /// deploy, or deployed prebuilt.
    pub fn is_compiled(self) -> bool {
        matches!(self, Lang::C | Lang::Rust | Lang::Go | Lang::Wasm)
    }

    /// Its source is text (every language but a prebuilt module).
    pub fn is_text(self) -> bool {
        self != Lang::Wasm
    }

    /// The entry file of a project archive when `entry=` names none, most
    /// likely first (Rust: a Cargo crate's, then a bare `main.rs`;
    /// JavaScript: `index.js`, unless `package.json` names its `main`).
    pub fn default_entries(self) -> &'static [&'static str] {
        match self {
            Lang::C => &["main.c"],
            Lang::Rust => &["src/main.rs", "main.rs"],
            Lang::Go => &["main.go"],
            Lang::Js => &["index.js"],
            Lang::Python => &["main.py"],
            Lang::Php => &["index.php"],
            Lang::Html => &["index.html"],
            Lang::Wasm => &[],
        }
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
            "wasm" => Lang::Wasm,
            _ => {
                return Err(format!(
                    "unknown lang '{s}' (expected one of: c, rust, go, js, python, php, html, wasm)"
                ))
            }
        };
        Ok(lang)
    }
}

impl Serialize for Lang {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Lang {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for lang in Lang::ALL {
            assert_eq!(lang.name().parse::<Lang>().unwrap(), lang);
            let json = serde_json::to_string(&lang).unwrap();
            assert_eq!(serde_json::from_str::<Lang>(&json).unwrap(), lang);
        }
        assert_eq!("JavaScript".parse::<Lang>().unwrap(), Lang::Js);
        assert!("cobol".parse::<Lang>().unwrap_err().contains("cobol"));
        assert!(serde_json::from_str::<Lang>("\"cobol\"").is_err());
    }
}

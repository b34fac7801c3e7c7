//! kiss-s6 analyze (placeholder until issue F lands).
use crate::msg::{Error, Result};
use std::ffi::OsString;
pub fn main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }

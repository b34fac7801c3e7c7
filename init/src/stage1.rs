//! Stage 1 (placeholder until issue A lands).
use crate::msg::{Error, Result};
use std::ffi::OsString;
pub fn main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "stage 1 not implemented yet")) }

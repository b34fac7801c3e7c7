//! s6-rc source tree tooling (placeholder until issue B lands).
use crate::msg::{Error, Result};
use std::ffi::OsString;
pub fn check_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
pub fn order_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
pub fn compile_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
pub fn enable_main(_args: Vec<OsString>, _enable: bool) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }

//! Clients (placeholder until issue A lands).
use crate::msg::{Error, Result};
use std::ffi::OsString;
pub fn hpr_main(_applet: &str, _args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
pub fn shutdown_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }
pub fn telinit_main(_args: Vec<OsString>) -> Result<i32> { Err(Error::new(111, "not implemented yet")) }

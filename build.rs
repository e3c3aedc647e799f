//! Link settings of the component (wasm32 only; native test builds are untouched).
//!
//! The WebAssembly stack is 256 KiB instead of Rust's default 1 MiB. Spin resets an
//! instance's linear memory after every request (wasmtime's pooling allocator zeroes the
//! memory it keeps resident), and the stack is most of that memory: at 1 MiB the reset cost
//! about 0.06 ms of CPU per request (measured, docs/performance.md). The deepest request the
//! gateway accepts uses about 37 KiB (strict JSON at its nesting limit, GraphQL at the
//! parser's recursion limit, OTLP; measured with a painted stack), and
//! tests/e2e/test_deep_input.py sends those inputs through the built component. The stack
//! is placed first (rustc's default for wasm), so an overflow traps, and Spin answers 500
//! for that request alone: nothing is forwarded.

const STACK_BYTES: u32 = 256 * 1024;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() == Ok("wasm32") {
        println!("cargo:rustc-link-arg-cdylib=-zstack-size={STACK_BYTES}");
    }
}

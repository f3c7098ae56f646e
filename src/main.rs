// A request allocates and frees many small buffers (headers, rows, JSON); mimalloc's
// per-thread free lists serve them for less than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    casapay::cli::main()
}

fn main() {
    std::process::exit(kore_notify::run());
}

//! Replays fuzz inputs of one target from files, printing the decoded input:
//! `cargo run --example replay -- TARGET FILE...`.

use limitstore_fuzz::{memory_model, rate_string, uri};

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().expect("usage: replay TARGET FILE...");
    for path in args {
        let data = std::fs::read(&path).expect("readable input");
        println!("{path}:");
        match target.as_str() {
            "memory_model" => {
                let input = memory_model::Input::decode(&data);
                println!("{input:?}");
                memory_model::run(&input);
            }
            "rate_string" => {
                let input = rate_string::Input::decode(&data);
                println!("{input:?}");
                rate_string::run(&input);
            }
            "uri" => {
                let input = uri::Input::decode(&data);
                println!("{input:?}");
                uri::run(&input);
            }
            other => panic!("unknown target {other}"),
        }
        println!("ok");
    }
}

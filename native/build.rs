//! Generates the Cap'n Proto reader/builder code for the order-entry schema
//! (`engine/schema/cift.capnp`, shared with the Python client through pycapnp).
//! Needs the `capnp` schema compiler on PATH (Debian: `apt-get install capnproto`).

fn main() {
    let schema = "../engine/schema/cift.capnp";
    println!("cargo:rerun-if-changed={schema}");
    if let Err(e) = capnpc::CompilerCommand::new()
        .src_prefix("../engine/schema")
        .default_parent_module(vec!["wire".into()])
        .file(schema)
        .run()
    {
        // A build script reports failure by exiting non-zero with a message.
        eprintln!(
            "error: compiling {schema} failed: {e}\n\
             hint: install the Cap'n Proto compiler (Debian: apt-get install capnproto)"
        );
        std::process::exit(1);
    }
}

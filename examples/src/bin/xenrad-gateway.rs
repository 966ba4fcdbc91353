//! `xenrad-gateway`: placeholder until the gateway issue lands.

fn main() {
    println!("xenrad-gateway: no endpoints yet");
}

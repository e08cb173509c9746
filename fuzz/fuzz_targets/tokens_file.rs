//! A tokens file, and the token a request carries.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: (&str, &str, &str)| {
    let (file, header, query) = input;
    let _ = hark::server::auth::Tokens::parse(file);
    let _ = hark::server::auth::request_token(Some(header), Some(query));
});

/// `[["word",count],...]` as JSON.
pub fn json(words: &[(String, usize)]) -> String {
    let items: Vec<String> = words
        .iter()
        .map(|(w, n)| format!("[\"{w}\",{n}]"))
        .collect();
    format!("[{}]", items.join(","))
}

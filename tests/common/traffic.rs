//! Randomized traffic over every command: varied keys, parameters, costs, PEEKs, bad input,
//! MULTI blocks and scripts, for tests that compare two servers' state afterwards.

use super::{try_call, Random};

/// Parameters of each algorithm that traffic picks from. A key lasts at least 20 s after its
/// last change, longer than a test takes from its traffic to its comparison, even with an AOF
/// that syncs every write.
const POLICIES: [(&str, &[&[&str]]); 6] = [
    ("RL.FIXED", &[&["10", "1m"], &["20", "1h"], &["5", "30s"]]),
    (
        "RL.SLIDING",
        &[
            &["10", "1m"],
            &["50", "1h", "PRECISION", "10ms"],
            &["8", "20s"],
        ],
    ),
    (
        "RL.TOKENBUCKET",
        &[&["10", "1", "20s"], &["20", "3", "1m"], &["5", "7", "1h"]],
    ),
    ("RL.GCRA", &[&["10", "1", "20s"], &["3", "2", "1m"]]),
    ("RL.THROTTLE", &[&["20s"], &["1m"]]),
    ("RL.DEBOUNCE", &[&["20s"], &["1m"]]),
];

/// Words of one random command.
fn random_command(random: &mut Random, keys: u64) -> Vec<String> {
    let key_index = random.below(keys);
    let key = format!("key:{key_index}");
    let (mut command, params) = POLICIES[(key_index % 6) as usize];
    if random.chance(4) {
        command = random.pick(&POLICIES).0;
    }
    let params = *random.pick(params);

    let mut words = vec![command.to_string(), key];
    if random.chance(3) {
        words.push("0".to_string());
    }
    words.extend(params.iter().map(|word| word.to_string()));
    let takes_cost = !matches!(command, "RL.THROTTLE" | "RL.DEBOUNCE");
    if takes_cost && random.chance(30) {
        words.push("COST".to_string());
        let cost = if random.chance(5) {
            1000
        } else {
            1 + random.below(3)
        };
        words.push(cost.to_string());
    }
    if random.chance(10) {
        words.push("PEEK".to_string());
    }
    if random.chance(2) {
        words.push("BOGUS".to_string());
    }
    words
}

/// Sends `count` random requests over `keys` keys, some in MULTI blocks and scripts. Errors
/// are part of the traffic; the test checks state afterwards.
pub fn send(connection: &mut redis::Connection, random: &mut Random, count: usize, keys: u64) {
    let mut sent = 0;
    while sent < count {
        match random.below(40) {
            0 => {
                let mut pipe = redis::pipe();
                pipe.atomic();
                for _ in 0..3 {
                    let words = random_command(random, keys);
                    let command = pipe.cmd(&words[0]);
                    for word in &words[1..] {
                        command.arg(word);
                    }
                }
                let _: redis::RedisResult<redis::Value> = pipe.query(connection);
                sent += 3;
            }
            1 => {
                let first = random_command(random, keys);
                let second = random_command(random, keys);
                let script = "local replies = {} \
                    for _, words in ipairs({ARGV[1], ARGV[2]}) do \
                        local args = {} \
                        for word in string.gmatch(words, '%S+') do table.insert(args, word) end \
                        table.insert(replies, server.pcall(unpack(args))) \
                    end \
                    return #replies";
                let first = first.join(" ");
                let second = second.join(" ");
                let _: redis::RedisResult<redis::Value> =
                    try_call(connection, &["EVAL", script, "0", &first, &second]);
                sent += 2;
            }
            _ => {
                let words = random_command(random, keys);
                let words: Vec<&str> = words.iter().map(String::as_str).collect();
                let _: redis::RedisResult<redis::Value> = try_call(connection, &words);
                sent += 1;
            }
        }
    }
}

//! The one thread that reads phone numbers, and the patterns it reads them with.
//!
//! phonenumber matches every pattern under one process-wide lock (its regex cache), so
//! numbers were never read on two threads at once; but each compiled pattern keeps
//! matching caches for every thread that used it (up to nine), and the patterns are
//! compiled with Unicode classes, where `\d` is every script's digits. Four clients
//! pushing batches of numbers from twelve countries took the service from 53 to 225 MB,
//! ~20 MB for each thread that read numbers. Reading them all on one thread, with the
//! patterns compiled for ASCII digits (what phonenumber matches them against: the
//! digits it extracted), keeps one set of caches: every region's 2,058 patterns weigh
//! ~22 MB so, against ~200 MB in Unicode. They are compiled a calling code at a time,
//! the first time a number needs them, so a service whose tenants call a dozen
//! countries holds only theirs.

use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::OnceLock;

use phonenumber::metadata::{Metadata, DATABASE};
use phonenumber::Type;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_PHONE_THREAD: Cell<bool> = const { Cell::new(false) };
    /// The calling codes whose regions' patterns are compiled (on the phone thread).
    static COMPILED: RefCell<HashSet<u16>> = RefCell::new(HashSet::new());
}

/// None when the thread could not be started.
static JOBS: OnceLock<Option<mpsc::Sender<Job>>> = OnceLock::new();

/// Room for every region's patterns, and the few phonenumber adds of its own.
const PATTERN_CAPACITY: usize = 10_000;

/// Runs `work` on the phone thread and returns what it returns (a panic in it resumes
/// here). Callers with many numbers pass them in one `work`: each hand-off costs about
/// 0.1 ms of waking the other thread.
pub fn on_phone_thread<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    if ON_PHONE_THREAD.with(Cell::get) {
        return work();
    }
    let (reply, answer) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = reply.send(panic::catch_unwind(AssertUnwindSafe(work)));
    });
    match jobs() {
        Some(jobs) => {
            if let Err(mpsc::SendError(job)) = jobs.send(job) {
                job();
            }
        }
        // No phone thread (the system refused one): read here, with caches of its own.
        None => job(),
    }
    match answer.recv() {
        Ok(Ok(value)) => value,
        Ok(Err(payload)) => panic::resume_unwind(payload),
        Err(_) => panic!("the phone thread dropped a job without running it"),
    }
}

fn jobs() -> Option<&'static mpsc::Sender<Job>> {
    JOBS.get_or_init(|| {
        let (jobs, received) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("phones".into())
            .spawn(move || {
                ON_PHONE_THREAD.with(|on| on.set(true));
                if let Ok(mut cache) = DATABASE.cache().lock() {
                    *cache = regex_cache::RegexCache::new(PATTERN_CAPACITY);
                }
                for job in received {
                    job();
                }
            })
            .ok()
            .map(|_| jobs)
    })
    .as_ref()
}

/// Compiles the patterns of the regions that share `code` (39: Italy and the Vatican),
/// for ASCII digits, unless they are already; true when it compiled them now. On the
/// phone thread only.
pub(super) fn compile_patterns(code: u16) -> bool {
    if COMPILED.with(|compiled| !compiled.borrow_mut().insert(code)) {
        return false;
    }
    let shared = DATABASE.cache();
    let Ok(mut cache) = shared.lock() else {
        return false;
    };
    let regions = DATABASE.by_code(&code).unwrap_or_default();
    for source in regions.into_iter().flat_map(region_patterns) {
        // A pattern ASCII cannot express is left to phonenumber, compiled its own way.
        if let Ok(regex) = regex::RegexBuilder::new(&source)
            .ignore_whitespace(true)
            .unicode(false)
            .build()
        {
            // Replaces what phonenumber compiled for a number read before.
            cache.insert(source, regex);
        }
    }
    true
}

const NUMBER_TYPES: [Type; 16] = [
    Type::FixedLine,
    Type::Mobile,
    Type::TollFree,
    Type::PremiumRate,
    Type::SharedCost,
    Type::PersonalNumber,
    Type::Voip,
    Type::Pager,
    Type::Uan,
    Type::Emergency,
    Type::Voicemail,
    Type::ShortCode,
    Type::StandardRate,
    Type::Carrier,
    Type::NoInternational,
    // The general pattern, every number of the region.
    Type::Unknown,
];

fn region_patterns(region: &Metadata) -> Vec<String> {
    let descriptors = region.descriptors();
    let mut patterns: Vec<&str> = NUMBER_TYPES
        .iter()
        .filter_map(|kind| descriptors.get(*kind))
        .map(|descriptor| descriptor.national_number().as_str())
        .collect();
    for format in region
        .formats()
        .iter()
        .chain(region.international_formats())
    {
        patterns.push(format.pattern().as_str());
        patterns.extend(format.leading_digits().iter().map(|digits| digits.as_str()));
    }
    patterns.extend(
        [
            region.national_prefix_for_parsing(),
            region.international_prefix(),
            region.leading_digits(),
        ]
        .into_iter()
        .flatten()
        .map(|regex| regex.as_str()),
    );
    patterns.into_iter().map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_region_pattern_compiles_for_ascii_digits() {
        let mut sources: Vec<String> = DATABASE.iter().flat_map(region_patterns).collect();
        sources.sort_unstable();
        sources.dedup();
        assert!(sources.len() > 2_000, "only {} patterns", sources.len());
        let ascii = sources
            .iter()
            .filter(|source| {
                regex::RegexBuilder::new(source)
                    .ignore_whitespace(true)
                    .unicode(false)
                    .build()
                    .is_ok()
            })
            .count();
        assert_eq!(ascii, sources.len());
    }

    #[test]
    fn every_region_example_number_reads_with_the_ascii_patterns() {
        let examples: Vec<(String, String)> = DATABASE
            .iter()
            .flat_map(|region| {
                let descriptors = region.descriptors();
                [descriptors.fixed_line(), descriptors.mobile()]
                    .into_iter()
                    .flatten()
                    .filter_map(|descriptor| descriptor.example())
                    .map(|digits| (region.country_code(), digits.to_owned()))
                    .collect::<Vec<_>>()
            })
            .map(|(code, digits)| (format!("+{code} {digits}"), format!("+{code}{digits}")))
            .collect();
        assert!(examples.len() > 400, "only {} examples", examples.len());
        let unread: Vec<&String> = examples
            .iter()
            .filter(|(written, e164)| {
                super::super::normalize(written, None).map(|phone| phone.e164) != Some(e164.clone())
            })
            .map(|(written, _)| written)
            .collect();
        assert!(unread.is_empty(), "not read: {unread:?}");
    }

    #[test]
    fn work_runs_on_one_thread_whoever_asks() {
        let threads: Vec<std::thread::ThreadId> = (0..4)
            .map(|_| std::thread::spawn(|| on_phone_thread(|| std::thread::current().id())))
            .map(|handle| handle.join().unwrap())
            .collect();
        assert!(threads.iter().all(|id| *id == threads[0]));
        assert_ne!(threads[0], std::thread::current().id());
        // Work on the phone thread asking for more runs it in place, not deadlocked.
        assert_eq!(on_phone_thread(|| on_phone_thread(|| 7)), 7);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_thread_lives_on() {
        let outcome = std::panic::catch_unwind(|| on_phone_thread(|| panic!("bad number")));
        assert!(outcome.is_err());
        assert_eq!(on_phone_thread(|| 1 + 1), 2);
    }
}

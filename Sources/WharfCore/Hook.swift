import Foundation

/// A notification to a downstream system: when `event` happens (to `partner`'s files, or to
/// anyone's), run a command or post to a URL.
public struct Hook: Sendable, Equatable, Encodable {
    public enum Event: String, Sendable, CaseIterable, Encodable {
        /// An upload was committed and its file is in `spool/inbox/`.
        case received
        /// A transfer was delivered (pushed, or fetched and acknowledged).
        case delivered
        /// A transfer died: retries ran out, an operator killed it, or nobody fetched it.
        case dead
    }

    public enum Action: Sendable, Equatable {
        /// A program and its arguments, run without a shell.
        case exec([String])
        /// An `https` URL (verified against `caFile` when given, else the system's CAs), or
        /// a plain `http` one on loopback.
        case url(String, caFile: String?)
    }

    public let id: Int64
    public let event: Event
    /// Only this partner's events; `nil` for every partner's.
    public let partner: String?
    public let action: Action
    /// Attempts, backoff and the oldest an event gets before it is given up.
    public let retry: RetryPolicy
    /// How long one run or request may take, in seconds.
    public let timeout: Double

    public init(id: Int64, event: Event, partner: String?, action: Action, retry: RetryPolicy = Hook.defaultRetry, timeout: Double = 30) {
        self.id = id
        self.event = event
        self.partner = partner
        self.action = action
        self.retry = retry
        self.timeout = timeout
    }

    /// Ten attempts, the first retry within 10 s, waits up to 10 min, for at most a day.
    public static let defaultRetry = RetryPolicy(initialDelay: 10, maximumDelay: 600, maxAttempts: 10, maxAge: 86_400)

    /// The action in words, for listings.
    public var target: String {
        switch action {
        case .exec(let arguments): arguments.map(Self.quoted).joined(separator: " ")
        case .url(let url, let caFile): url + (caFile.map { " (CA \($0))" } ?? "")
        }
    }

    /// Splits `command` into words as a shell would split a simple command (spaces, single
    /// and double quotes, backslashes), without expanding anything.
    public static func words(_ command: String) throws(WharfError) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in command {
            if escaped {
                current.append(character)
                escaped = false
            } else if let open = quote {
                if character == open { quote = nil } else if character == "\\" && open == "\"" { escaped = true } else { current.append(character) }
            } else if character == "\\" {
                escaped = true
                inWord = true
            } else if character == "'" || character == "\"" {
                quote = character
                inWord = true
            } else if character == " " || character == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        guard quote == nil, !escaped else {
            throw WharfError.invalid("--exec has an unclosed quote or a trailing backslash", fix: "quote each argument whole")
        }
        if inWord { words.append(current) }
        guard !words.isEmpty else { throw WharfError.invalid("--exec is empty", fix: "give the program to run and its arguments") }
        return words
    }

    private static func quoted(_ word: String) -> String {
        let plain = !word.isEmpty && word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "/._-=:,+@%".unicodeScalars.contains($0) }
        return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(event, forKey: .event)
        try container.encode(partner, forKey: .partner)
        switch action {
        case .exec(let arguments): try container.encode(arguments, forKey: .exec)
        case .url(let url, let caFile):
            try container.encode(url, forKey: .url)
            try container.encodeIfPresent(caFile, forKey: .caFile)
        }
        try container.encode(retry.maxAttempts, forKey: .maxAttempts)
        try container.encode(retry.initialDelay, forKey: .retryInitial)
        try container.encode(timeout, forKey: .timeout)
    }

    private enum CodingKeys: String, CodingKey {
        case id, event, partner, exec, url, caFile, maxAttempts, retryInitial, timeout
    }
}

/// One event queued for one hook, committed with what it describes; dispatched at least
/// once (a receiver that must not act twice keys on `id`).
public struct HookEvent: Sendable, Equatable, Encodable {
    public enum State: String, Sendable, CaseIterable, Encodable {
        case pending, done, failed
    }

    public let id: Int64
    public let hookID: Int64
    public let event: Hook.Event
    /// The receipt's id for `received`, the transfer's for `delivered` and `dead`.
    public let subject: String
    public let partner: String
    public let filename: String
    public let size: Int64
    public let sha256: String
    /// For `received`: the file's name in `spool/inbox/{partner}/`.
    public let storedName: String?
    /// For `dead`: why.
    public let reason: String?
    public let occurredAt: Date
    public var state: State
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastError: String?

    public init(
        id: Int64, hookID: Int64, event: Hook.Event, subject: String, partner: String, filename: String, size: Int64,
        sha256: String, storedName: String?, reason: String?, occurredAt: Date, state: State = .pending, attempts: Int = 0,
        nextAttemptAt: Date? = nil, lastError: String? = nil
    ) {
        self.id = id
        self.hookID = hookID
        self.event = event
        self.subject = subject
        self.partner = partner
        self.filename = filename
        self.size = size
        self.sha256 = sha256
        self.storedName = storedName
        self.reason = reason
        self.occurredAt = occurredAt
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
    }

    /// The fields a hook is given, by name: the JSON document's keys, and in upper case
    /// after `WHARF_EVENT_` its environment variables. `path` is where a received file is.
    public func fields(path: String?) -> [(String, String)] {
        var fields: [(String, String)] = [
            ("id", String(id)),
            ("event", event.rawValue),
            ("occurred_at", occurredAt.utcTimestamp(milliseconds: true)),
            ("partner", partner),
            (event == .received ? "receipt" : "transfer", subject),
            ("filename", filename),
            ("size", String(size)),
            ("sha256", sha256),
            ("attempt", String(attempts + 1)),
        ]
        if let path { fields.append(("path", path)) }
        if let reason { fields.append(("reason", reason)) }
        return fields
    }

    /// The event as one JSON object (`size`, `id` and `attempt` as numbers).
    public func json(path: String?) -> String {
        let numbers: Set<String> = ["id", "size", "attempt"]
        let members = fields(path: path).map { key, value in
            "\(EscapedText.json(key)): \(numbers.contains(key) ? value : EscapedText.json(value))"
        }
        return "{" + members.joined(separator: ", ") + "}\n"
    }

    /// `WHARF_EVENT` (the event's name) and `WHARF_EVENT_{FIELD}` for each field.
    public func environment(path: String?) -> [String: String] {
        var environment = ["WHARF_EVENT": event.rawValue]
        for (key, value) in fields(path: path) where key != "event" {
            environment["WHARF_EVENT_" + key.uppercased()] = value
        }
        return environment
    }
}

/// How one dispatch of a hook event ended.
public enum HookOutcome: Sendable, Equatable {
    case done
    /// Failed: try again at this time.
    case retry(at: Date, error: String)
    /// Failed for the last time.
    case failed(error: String)

    /// What follows a failed dispatch (`error` in words) of `event` by `hook` at `now`.
    public static func afterFailure(of event: HookEvent, by hook: Hook, error: String, now: Date, random: Double) -> HookOutcome {
        switch hook.retry.afterTransientFailure(attempts: event.attempts + 1, createdAt: event.occurredAt, now: now, retryAfter: nil, random: random) {
        case .retry(let date): .retry(at: date, error: error)
        case .giveUp(let why): .failed(error: "\(error); \(why)")
        }
    }
}

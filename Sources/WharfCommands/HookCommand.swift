import ArgumentParser
import Foundation
import WharfCore
import WharfDelivery
import WharfStore


/// `wharf hook`: tell downstream systems when files arrive, are delivered or die.
struct HookCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hook",
        abstract: "Tell downstream systems when a file is received, delivered or dead.",
        discussion: """
            Each event is queued in the same commit as what it describes and dispatched at \
            least once by the running gateway (or by `wharf deliver --once`), retried with \
            backoff while the hook fails. A receiver that must not act twice keys on the \
            event's id.
            """,
        subcommands: [Add.self, List.self, Remove.self, Test.self, Events.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a hook.",
            discussion: """
                --exec runs a program without a shell: its words are split as a shell would \
                split them, nothing is expanded. It gets the event as one JSON object on stdin \
                and as WHARF_EVENT (received, delivered or dead) and WHARF_EVENT_ID, _PARTNER, \
                _FILENAME, _SIZE, _SHA256, _OCCURRED_AT, _ATTEMPT, _RECEIPT or _TRANSFER, \
                _PATH (received: the file in spool/inbox/) and _REASON (dead) in its \
                environment. Exit status 0 means done.
                --url posts the same JSON (header Wharf-Event-Id); any 2xx answer means done. \
                It must be https (verified against --ca-file, else the system's CAs) or plain \
                http to a loopback address.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(name: .customLong("on"), help: ArgumentHelp("The event: received, delivered or dead.", valueName: "event"))
        var event: String

        @Option(help: "Only this partner's events (default: every partner's).")
        var partner: String?

        @Option(help: ArgumentHelp("The program to run and its arguments, such as '/usr/local/bin/ingest --queue orders'.", valueName: "command"))
        var exec: String?

        @Option(help: ArgumentHelp("The URL to post the event to.", valueName: "url"))
        var url: String?

        @Option(help: ArgumentHelp("CA certificates (PEM) that verify an https --url.", valueName: "file"))
        var caFile: String?

        @Option(help: "Attempts before an event is given up.")
        var maxAttempts: Int = Hook.defaultRetry.maxAttempts

        @Option(help: ArgumentHelp("Upper bound of the first retry's wait, in seconds; it doubles up to 10 min.", valueName: "seconds"))
        var retryInitial: Double = Hook.defaultRetry.initialDelay

        @Option(help: ArgumentHelp("How long one run or request may take, in seconds.", valueName: "seconds"))
        var timeout: Double = 30

        func run() throws {
            let event = try HookCommand.parse(Hook.Event.self, event, option: "--on")
            let action = try self.action()
            guard maxAttempts >= 1 else { throw WharfError.invalid("--max-attempts must be at least 1", fix: "give 1 for a single attempt") }
            guard retryInitial >= 0, retryInitial.isFinite else {
                throw WharfError.invalid("--retry-initial must be 0 or more seconds", fix: "give the first retry's wait, such as 10")
            }
            guard timeout > 0, timeout <= 3600 else {
                throw WharfError.invalid("--timeout must be more than 0 and at most 3600 seconds", fix: "give the longest one run may take, such as 30")
            }
            let partner = try partner.map { name throws(WharfError) in try PartnerName(name) }
            var retry = Hook.defaultRetry
            retry.maxAttempts = maxAttempts
            retry.initialDelay = retryInitial
            let registry = try home.resolved.openStore()
            let hook = try registry.addHook(event: event, partner: partner, action: action, retry: retry, timeout: timeout)
            let scope = partner.map { "\($0)'s files" } ?? "every partner's files"
            OperatorAudit.record(registry, "hook add", partner: partner?.rawValue, "hook \(hook.id): on \(event.rawValue) of \(scope), \(hook.target)")
            Console.print("Hook \(hook.id): on \(event.rawValue) of \(scope), \(EscapedText.terminal(hook.target))")
        }

        /// The action, checked now rather than at the first event.
        func action() throws(WharfError) -> Hook.Action {
            switch (exec, url) {
            case (nil, nil), (.some, .some):
                throw WharfError.invalid("give exactly one of --exec and --url", fix: "--exec runs a command, --url posts to a URL")
            case (let command?, nil):
                if caFile != nil { throw WharfError.invalid("--ca-file goes with --url", fix: "leave it out of an --exec hook") }
                var words = try Hook.words(command)
                words[0] = try Self.program(words[0])
                return .exec(words)
            case (nil, let url?):
                return .url(try Self.checkedURL(url), caFile: try caFile.map { path throws(WharfError) in try Self.caBundle(path) })
            }
        }

        /// `name` as an absolute path to an executable file: as given when it has a slash,
        /// else found in `PATH` now, so a later change of `PATH` cannot change what runs.
        static func program(_ name: String) throws(WharfError) -> String {
            let fileManager = FileManager.default
            let candidates = name.contains("/")
                ? [URL(fileURLWithPath: name).standardizedFileURL.path]
                : (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/\(name)" }
            var isDirectory: ObjCBool = false
            guard let found = candidates.first(where: {
                fileManager.fileExists(atPath: $0, isDirectory: &isDirectory) && !isDirectory.boolValue && fileManager.isExecutableFile(atPath: $0)
            }) else {
                throw WharfError.invalid(
                    "\(EscapedText.terminal(name)) is not an executable file\(name.contains("/") ? "" : " in PATH")",
                    fix: "give the program's absolute path, and check that it is executable (chmod +x)"
                )
            }
            return found
        }

        static func checkedURL(_ text: String) throws(WharfError) -> String {
            guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
                  let host = components.host, !host.isEmpty else {
                throw WharfError.invalid("--url '\(EscapedText.terminal(text))' is not a URL", fix: "give one such as https://ingest.example.com/wharf-events")
            }
            if components.user != nil || components.password != nil {
                throw WharfError.invalid("--url must not carry a user or password", fix: "let the receiver authorize by its own means, such as a token in the path")
            }
            switch scheme {
            case "https": return text
            case "http":
                let loopback = ["localhost", "127.0.0.1", "::1", "[::1]"].contains(host.lowercased()) || host.hasPrefix("127.")
                guard loopback else {
                    throw WharfError.invalid(
                        "--url \(EscapedText.terminal(text)) is plain http to another machine; events would cross the network unprotected",
                        fix: "use https (with --ca-file for a private CA), or plain http to 127.0.0.1"
                    )
                }
                return text
            default:
                throw WharfError.invalid("--url must be https or http, not \(EscapedText.terminal(scheme))", fix: "give an https URL")
            }
        }

        static func caBundle(_ path: String) throws(WharfError) -> String {
            let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
            guard let text = try? String(contentsOfFile: absolute, encoding: .utf8), text.contains("-----BEGIN CERTIFICATE-----") else {
                throw WharfError.invalid("--ca-file \(EscapedText.terminal(path)) is not a readable PEM file of certificates", fix: "give the CA certificates that issued the receiver's server certificate")
            }
            return absolute
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the hooks.")

        @OptionGroup var home: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let hooks = try home.resolved.openStore().hooks()
            Listing.print(hooks, json: json, empty: "No hooks.") { hook in
                "\(hook.id)  on \(hook.event.rawValue)  \(hook.partner ?? "every partner")  \(hook.action.isExec ? "exec" : "url") \(EscapedText.terminal(hook.target))"
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a hook, with its events (those still queued are dropped).")

        @OptionGroup var home: HomeOptions

        @Argument(help: "The hook id.")
        var id: Int64

        func run() throws {
            let registry = try home.resolved.openStore()
            try registry.removeHook(id)
            OperatorAudit.record(registry, "hook remove", "hook \(id)")
            Console.print("Removed hook \(id).")
        }
    }

    struct Test: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a hook once with a sample event (id 0, file wharf-hook-test.xml), now, and say how it went.",
            discussion: "Nothing is queued or recorded; exit status 1 when the hook fails."
        )

        @OptionGroup var home: HomeOptions

        @Argument(help: "The hook id.")
        var id: Int64

        func run() throws {
            let registry = try home.resolved.openStore()
            guard let hook = try registry.hooks().first(where: { $0.id == id }) else {
                throw WharfError(.notFound, "no hook with id \(id)", fix: "`wharf hook list` shows the hooks")
            }
            if let failure = HookRunner.test(hook, partner: hook.partner ?? "example") {
                Console.error("wharf: hook \(id) failed: \(failure)")
                throw ExitCode(1)
            }
            Console.print("Hook \(id) ran: \(EscapedText.terminal(hook.target)) took the sample \(hook.event.rawValue) event.")
        }
    }

    struct Events: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List hook events, newest first: pending (waiting or being retried), done or failed."
        )

        @OptionGroup var home: HomeOptions

        @Option(help: "Only this hook's events.")
        var hook: Int64?

        @Option(help: "Only events in this state: pending, done or failed.")
        var state: String?

        @OptionGroup var list: ListOptions

        func run() throws {
            let state = try state.map { text throws(WharfError) in try HookCommand.parse(HookEvent.State.self, text, option: "--state") }
            let events = try home.resolved.openStore().hookEvents(hook: hook, partner: try list.partnerName(), state: state, limit: list.limit)
            Listing.print(events, json: list.json, empty: "No hook events.") { event in
                let retry = event.state == .pending && event.attempts > 0 ? " next \(event.nextAttemptAt?.utcTimestamp() ?? "-")" : ""
                let error = event.lastError.map { "  \(EscapedText.terminal($0))" } ?? ""
                return "\(event.id)  hook \(event.hookID)  \(event.event.rawValue)  \(event.partner)  \(EscapedText.terminal(event.filename))  \(event.state.rawValue), \(event.attempts) attempt\(event.attempts == 1 ? "" : "s")\(retry)\(error)"
            }
        }
    }
}

extension HookCommand {
    /// `text` as one of `Value`'s cases, or a refusal that lists them.
    static func parse<Value: RawRepresentable & CaseIterable>(_: Value.Type, _ text: String, option: String) throws(WharfError) -> Value
    where Value.RawValue == String {
        guard let value = Value(rawValue: text) else {
            let names = Value.allCases.map(\.rawValue)
            throw WharfError.invalid(
                "\(option) '\(EscapedText.terminal(text))' is not one of \(names.joined(separator: ", "))",
                fix: "give \(option) \(names.joined(separator: " or \(option) "))"
            )
        }
        return value
    }
}

extension Hook.Action {
    var isExec: Bool { if case .exec = self { true } else { false } }
}

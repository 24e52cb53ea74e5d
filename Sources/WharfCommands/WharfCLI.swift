import ArgumentParser
import Foundation
import WharfCore

/// The `wharf` command line: parses arguments, runs the command, and turns a
/// `WharfError` into one line on stderr and exit status 1.
public enum WharfCLI {
    public static func main(_ arguments: [String]? = nil) async {
        if let unknown = unknownHelpTopic(arguments ?? Array(CommandLine.arguments.dropFirst())) {
            // ArgumentParser would print the nearest command's help and exit 0.
            Console.error("wharf: there is no command '\(unknown)'; `wharf --help` lists the commands")
            exit(1)
        }
        do {
            var command = try Wharf.parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as WharfError {
            Console.error("wharf: \(error)")
            exit(1)
        } catch {
            Wharf.exit(withError: error)
        }
    }
}

extension WharfCLI {
    /// The words after `wharf help` that name no command, if any do not.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var command: any ParsableCommand.Type = Wharf.self
        var path: [String] = []
        // Command names come first; an option (and its value) ends them.
        for name in arguments.dropFirst() {
            if name.hasPrefix("-") { break }
            path.append(name)
            guard let next = command.configuration.subcommands.first(where: { $0._commandName == name }) else {
                return path.joined(separator: " ")
            }
            command = next
        }
        return nil
    }
}

/// The root command.
struct Wharf: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wharf",
        abstract: "A file exchange gateway: partners push files over mutual TLS, Wharf delivers files to them.",
        discussion: """
            Every command works on a Wharf home (--home, else WHARF_HOME, else the current \
            directory) holding the registry (wharf.sqlite), Wharf's CA (pki/), partner \
            bundles (partners/) and the spool (spool/). Changes take effect without a restart.
            """,
        version: WharfVersion.current,
        subcommands: [Init.self, Serve.self, Status.self, ConfigCommand.self, CA.self, PartnerCommand.self, Send.self, Deliver.self, Transfers.self, ScheduleCommand.self, HookCommand.self, Inbox.self, ReceiptCommand.self, Audit.self, DefenderCommand.self, DatabaseCommand.self, NodesCommand.self, BackupCommand.self, RestoreCommand.self]
    )
}

/// Writing to the terminal. Output may hold text from outside (certificate subjects, file
/// names, display names, what a receiver answered): every line is printed escaped
/// (`EscapedText.terminal`), so a control character, a newline or a bidirectional
/// override in it cannot move the cursor, forge a line or reorder what is shown.
enum Console {
    /// Prints `text`, each of its lines escaped.
    static func print(_ text: String) {
        Swift.print(text.split(separator: "\n", omittingEmptySubsequences: false).map { EscapedText.terminal(String($0)) }
            .joined(separator: "\n"))
    }

    /// Prints a JSON document as it is: its strings are escaped by the encoder.
    static func printJSON(_ text: String) {
        Swift.print(text)
    }

    /// Writes `line` to stderr, escaped.
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((EscapedText.terminal(line) + "\n").utf8))
    }
}

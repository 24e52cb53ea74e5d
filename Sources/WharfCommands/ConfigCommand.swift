import ArgumentParser
import Foundation
import WharfCore

/// `wharf config`: the settings of `serve` and `deliver`.
struct ConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show the settings `serve` and `deliver` run with.",
        discussion: """
            Every long option of `serve` and `deliver` is also a key of the home's wharf.yml \
            (`retry-initial: 30`) and an environment variable (WHARF_RETRY_INITIAL=30). A flag \
            wins over the environment, which wins over the file, which wins over the default.
            """,
        subcommands: [Show.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the settings in effect and where each came from (default, file, environment, flag).",
            discussion: "Give the options `serve` would get to see what they change. Exits 1 naming the problem if a value is not allowed."
        )

        @OptionGroup var home: HomeOptions
        @Flag(help: "Print JSON.") var json = false
        @OptionGroup(title: "Listeners") var listeners: ListenerOptions
        @OptionGroup(title: "Delivery") var delivery: DeliveryOptions
        @OptionGroup(title: "Several nodes") var node: NodeOptions
        @OptionGroup(title: "Logging") var logging: LogOptions

        struct Report: Encodable {
            let file: String?
            let settings: [EffectiveSettings.Value]
        }

        func run() throws {
            let home = home.resolved
            let file = try ConfigurationFile.load(home: home)
            let settings = try EffectiveSettings.resolve(
                for: .serve, flags: listeners.flags.merging(delivery.flags) { $1 }.merging(logging.flags) { $1 }.merging(node.flags) { $1 },
                environment: ProcessInfo.processInfo.environment, file: file
            )
            if json {
                Console.printJSON(Listing.json(Report(file: file?.path, settings: settings.shownValues)))
                return
            }
            Console.print("File: \(file?.path ?? "none (\(home.path)/\(ConfigurationFile.name) does not exist)")")
            let width = settings.values.map(\.key.count).max() ?? 0
            let valueWidth = settings.shownValues.map { $0.value.count }.max() ?? 0
            for value in settings.shownValues {
                let from = switch value.source {
                case .default: "default"
                case .file: "file"
                case .environment: "environment (\(value.origin))"
                case .flag: "flag (\(value.origin))"
                }
                let key = value.key.padding(toLength: width, withPad: " ", startingAt: 0)
                let shown = value.value.padding(toLength: valueWidth, withPad: " ", startingAt: 0)
                Console.print("\(key)  \(shown)  \(from)")
            }
        }
    }
}

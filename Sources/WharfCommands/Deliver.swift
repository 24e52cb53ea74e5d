import ArgumentParser
import Foundation
import Logging
import NIOPosix
import WharfCore
import WharfDelivery
import WharfSpool

/// The options of a node of several (a home whose registry is PostgreSQL), shared by
/// `serve` and `deliver`. Each may also be set in the environment or in `wharf.yml`.
struct NodeOptions: ParsableArguments {
    @Option(help: .setting("node-name", valueName: "name")) var nodeName: String?
    @Option(help: .setting("claim-lease", valueName: "seconds")) var claimLease: String?

    var flags: [String: String] {
        ["node-name": nodeName, "claim-lease": claimLease].compactMapValues { $0 }
    }
}

/// Options shared by `serve` and `deliver` for the outbound worker. Each may also be set in
/// the environment or in `wharf.yml` (see `Setting`); a flag wins.
struct DeliveryOptions: ParsableArguments {
    @Option(help: .setting("retry-initial", valueName: "seconds")) var retryInitial: String?
    @Option(help: .setting("retry-maximum", valueName: "seconds")) var retryMaximum: String?
    @Option(help: .setting("max-attempts", valueName: "n")) var maxAttempts: String?
    @Option(help: .setting("max-age", valueName: "seconds")) var maxAge: String?
    @Option(help: .setting("max-deliveries-per-partner", valueName: "n")) var maxDeliveriesPerPartner: String?
    @Option(help: .setting("keep-sent-days", valueName: "days")) var keepSentDays: String?

    /// The options given, by setting.
    var flags: [String: String] {
        [
            "retry-initial": retryInitial, "retry-maximum": retryMaximum, "max-attempts": maxAttempts, "max-age": maxAge,
            "max-deliveries-per-partner": maxDeliveriesPerPartner, "keep-sent-days": keepSentDays,
        ].compactMapValues { $0 }
    }

    /// The worker's configuration from settings already checked by `EffectiveSettings`.
    static func configuration(_ settings: EffectiveSettings) -> DeliveryConfiguration {
        var configuration = DeliveryConfiguration()
        configuration.retryPolicy.initialDelay = settings.double("retry-initial")
        configuration.retryPolicy.maximumDelay = settings.double("retry-maximum")
        configuration.retryPolicy.maxAttempts = settings.int("max-attempts")
        configuration.retryPolicy.maxAge = settings.double("max-age")
        configuration.maxDeliveriesPerPartner = settings.int("max-deliveries-per-partner")
        configuration.sentRetention = settings.double("keep-sent-days") * 86_400
        return configuration
    }

    static func nonNegative(_ value: Double, _ option: String) throws(WharfError) -> Double {
        guard value >= 0, value.isFinite else { throw .invalid("\(option) must be a number of 0 or more", fix: "give seconds, such as 30 or 0.5") }
        return value
    }
}

/// `wharf deliver --once`.
struct Deliver: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue the drop folder and due schedules, deliver what is due, then exit.",
        discussion: """
            For cron-driven set-ups and tests: scans the drop folder twice a second apart, runs \
            the schedules that are due, delivers every transfer that is due (and retries that \
            fall due meanwhile) and exits when nothing is due or in flight. Prints what this \
            run's attempts came to, and exits 1 if a transfer died in it. `wharf serve` does \
            the same all the time; one of them runs per home (the other is refused).
            """
    )

    @OptionGroup var home: HomeOptions

    @Flag(help: "Required: deliver what is due, then exit.")
    var once = false

    @OptionGroup(title: "Delivery") var delivery: DeliveryOptions

    @OptionGroup(title: "Several nodes") var node: NodeOptions

    @OptionGroup(title: "Logging") var logging: LogOptions

    func run() async throws {
        guard once else {
            throw WharfError.invalid("deliver needs --once", fix: "`wharf serve` delivers continuously")
        }
        let home = home.resolved
        let settings = try EffectiveSettings.resolve(
            for: .gateway, flags: delivery.flags.merging(logging.flags) { $1 }.merging(node.flags) { $1 },
            environment: ProcessInfo.processInfo.environment, file: try ConfigurationFile.load(home: home)
        )
        LogOptions.bootstrap(settings)
        // Opening blocks (the registry, the spool's recovery): on the thread pool.
        let gateway = try await NIOThreadPool.singleton.runIfActive { try Gateway.open(home, settings: settings, logger: Logger(label: "wharf")) }
        let tally = try await gateway.deliverOnce(DeliveryOptions.configuration(settings))
        // This run's outcomes, not the queue's history: what a cron job's mail should say.
        Console.print("delivered: \(tally.delivered), retrying: \(tally.retrying), dead: \(tally.dead)")
        if tally.dead > 0 {
            Console.error("wharf: \(tally.dead) transfer\(tally.dead == 1 ? "" : "s") died in this run; `wharf transfers list --state dead` shows why")
            throw ExitCode(1)
        }
    }
}

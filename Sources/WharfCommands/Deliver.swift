import ArgumentParser
import Foundation
import Logging
import WharfCore
import WharfDelivery
import WharfSpool

/// Options shared by `serve` and `deliver` for the outbound worker.
struct DeliveryOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Upper bound of the first retry's wait, in seconds (default 30); doubles per attempt.", valueName: "seconds"))
    var retryInitial: Double?

    @Option(help: ArgumentHelp("The longest wait between attempts, in seconds (default 1800).", valueName: "seconds"))
    var retryMaximum: Double?

    @Option(help: ArgumentHelp("Attempts before a transfer dies (default 20).", valueName: "n"))
    var maxAttempts: Int?

    @Option(help: ArgumentHelp("Age in seconds after which a transfer dies (default 259200, 72 h).", valueName: "seconds"))
    var maxAge: Double?

    @Option(help: ArgumentHelp("Deliveries at once to one partner (default 4).", valueName: "n"))
    var maxDeliveriesPerPartner: Int?

    @Option(help: ArgumentHelp("Days delivered files stay in spool/sent/ (default 7).", valueName: "days"))
    var keepSentDays: Double?

    func configuration() throws(WharfError) -> DeliveryConfiguration {
        var configuration = DeliveryConfiguration()
        if let retryInitial { configuration.retryPolicy.initialDelay = try Self.nonNegative(retryInitial, "--retry-initial") }
        if let retryMaximum { configuration.retryPolicy.maximumDelay = try Self.nonNegative(retryMaximum, "--retry-maximum") }
        if let maxAttempts {
            guard maxAttempts > 0 else { throw .invalid("--max-attempts must be at least 1", fix: "give a whole number of 1 or more") }
            configuration.retryPolicy.maxAttempts = maxAttempts
        }
        if let maxAge { configuration.retryPolicy.maxAge = try Self.nonNegative(maxAge, "--max-age") }
        if let maxDeliveriesPerPartner {
            guard maxDeliveriesPerPartner > 0 else {
                throw .invalid("--max-deliveries-per-partner must be at least 1", fix: "give a whole number of 1 or more")
            }
            configuration.maxDeliveriesPerPartner = maxDeliveriesPerPartner
        }
        if let keepSentDays { configuration.sentRetention = try Self.nonNegative(keepSentDays, "--keep-sent-days") * 86_400 }
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

    @OptionGroup var delivery: DeliveryOptions

    @OptionGroup(title: "Logging") var logging: LogOptions

    func run() async throws {
        guard once else {
            throw WharfError.invalid("deliver needs --once", fix: "`wharf serve` delivers continuously")
        }
        logging.bootstrap()
        let gateway = try Gateway.open(home.resolved, logger: Logger(label: "wharf"))
        let tally = try await gateway.deliverOnce(try delivery.configuration())
        // This run's outcomes, not the queue's history: what a cron job's mail should say.
        print("delivered: \(tally.delivered), retrying: \(tally.retrying), dead: \(tally.dead)")
        if tally.dead > 0 {
            Console.error("wharf: \(tally.dead) transfer\(tally.dead == 1 ? "" : "s") died in this run; `wharf transfers list --state dead` shows why")
            throw ExitCode(1)
        }
    }
}

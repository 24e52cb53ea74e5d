import ArgumentParser
import Foundation
import WharfCore
import WharfDelivery
import WharfSpool
import WharfStore

/// `wharf send`: queue files for a partner.
struct Send: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue files for delivery to a partner.",
        discussion: """
            Each file is copied into the spool (fsynced, then renamed into place) and recorded \
            as a queued transfer, whose id is printed. The running gateway (or `wharf deliver \
            --once`) delivers it. With --wait, send waits for every outcome and exits 1 if a \
            transfer dies.
            """
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner to deliver to.")
    var partner: String

    @Argument(help: "The files to send; each is delivered under its own file name.")
    var files: [String]

    @Flag(help: "Wait until every transfer is delivered or dead.")
    var wait = false

    @Option(help: ArgumentHelp("With --wait, give up waiting after this many seconds (the transfers go on).", valueName: "seconds"))
    var timeout: Int?

    // Synchronous, on the main thread: the store's calls block, which must not happen on
    // Swift's concurrency pool.
    func run() throws {
        let name = try PartnerName(partner)
        // Every file is checked before any is queued.
        for path in files {
            _ = try InboundFileName((path as NSString).lastPathComponent)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw WharfError(.unreadableFile, "\(path) does not exist", fix: "check the path")
            }
            guard !isDirectory.boolValue, FileManager.default.isReadableFile(atPath: path) else {
                throw WharfError.invalid("\(path) is not a readable regular file", fix: "give the path of a file")
            }
        }
        let home = home.resolved
        let registry = try home.openStore()
        if wait, !(try home.isServed(store: registry)) {
            throw WharfError(
                .invalidInput, "no gateway is running on \(home.path) to deliver what --wait would wait for; nothing was queued",
                fix: "start `wharf serve` first, or send without --wait and run `wharf deliver --once`"
            )
        }
        guard let registered = try registry.partner(named: name) else { throw WharfError.unknownPartner(name.rawValue) }
        if registered.outbound.url == nil, registered.outbound.delivery == .push {
            throw WharfError.invalid(
                "partner '\(name)' has no delivery URL", fix: "set one with `wharf partner update \(name) --url URL`, or let it fetch its files with `--delivery pull`"
            )
        }
        let spool = Spool(root: home.spoolDirectory)
        try spool.prepare()

        let outbox = Outbox(store: registry, spool: spool)
        var ids: [String] = []
        for path in files {
            guard let transfer = try outbox.queue(path, for: name) else { continue }
            ids.append(transfer.id)
            Console.print("\(transfer.id)  queued  \(transfer.filename)  \(transfer.size) bytes  sha256 \(transfer.sha256)")
        }
        if !ids.isEmpty {
            OperatorAudit.record(registry, "send", partner: name.rawValue, "queued \(ids.count) files: \(ids.joined(separator: ", "))")
        }
        guard wait else { return }

        let deadline = timeout.map { Date().addingTimeInterval(Double($0)) }
        var finished: [String: Transfer] = [:]
        while finished.count < ids.count {
            for id in ids where finished[id] == nil {
                if let transfer = try registry.transfer(id: id), transfer.state.isFinal { finished[id] = transfer }
            }
            if finished.count == ids.count { break }
            if let deadline, Date() > deadline {
                throw WharfError(.timedOut, "gave up waiting: \(ids.count - finished.count) transfers are not finished", fix: "see `wharf transfers list`")
            }
            Thread.sleep(forTimeInterval: 0.2)
        }
        var failed = false
        for id in ids {
            let transfer = finished[id]!
            Console.print("\(id)  \(transfer.state.rawValue)\(transfer.lastError.map { "  \($0)" } ?? "")")
            failed = failed || transfer.state != .delivered
        }
        if failed { throw ExitCode(1) }
    }
}

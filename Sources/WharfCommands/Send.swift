import ArgumentParser
import Foundation
import WharfCore
import WharfSpool
import WharfStore

/// `wharf send`: queue files for a partner.
struct Send: AsyncParsableCommand {
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

    func run() async throws {
        let name = try PartnerName(partner)
        let names = try files.map { path throws(WharfError) in try InboundFileName((path as NSString).lastPathComponent) }
        let home = home.resolved
        let registry = try home.openRegistry()
        guard let registered = try registry.partner(named: name) else { throw WharfError.unknownPartner(name.rawValue) }
        if registered.outbound.url == nil {
            throw WharfError.invalid(
                "partner '\(name)' has no delivery URL", fix: "set one with `wharf partner update \(name) --url URL`"
            )
        }
        let spool = Spool(root: home.spoolDirectory)
        try spool.prepare()

        var ids: [String] = []
        for (path, filename) in zip(files, names) {
            let id = Transfer.newID()
            let staged = try spool.stageOutgoing(copying: path, id: id)
            let transfer = Transfer(id: id, partner: name.rawValue, filename: filename.rawValue, size: staged.size, sha256: staged.sha256)
            do {
                try registry.enqueue(transfer) { try spool.installOutgoing(staged, id: id) }
            } catch {
                unlink(staged.path)
                throw error
            }
            ids.append(id)
            print("\(id)  queued  \(filename)  \(staged.size) bytes  sha256 \(staged.sha256)")
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
                throw WharfError(.storage, "gave up waiting: \(ids.count - finished.count) transfers are not finished", fix: "see `wharf transfers list`")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        var failed = false
        for id in ids {
            let transfer = finished[id]!
            print("\(id)  \(transfer.state.rawValue)\(transfer.lastError.map { "  \($0)" } ?? "")")
            failed = failed || transfer.state != .delivered
        }
        if failed { throw ExitCode(1) }
    }
}

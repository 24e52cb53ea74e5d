import ArgumentParser
import WharfCore

/// `wharf partner list`.
struct PartnerList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the registered partners.")

    @OptionGroup var home: HomeOptions

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let reports = try home.resolved.openStore().partners().map(PartnerReport.init)
        let width = max(4, reports.map(\.name.count).max() ?? 0)
        func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: width, withPad: " ", startingAt: 0) }
        Listing.print(
            reports, json: json, empty: "No partners yet: `wharf partner add NAME` registers one.",
            header: "\(pad("NAME", width))  STATUS    IDS  EXPIRES     URL"
        ) { report in
            let expires = report.earliestExpiry.map { String($0.utcTimestamp().prefix(10)) } ?? "-"
            return "\(pad(report.name, width))  \(pad(report.status, 8))  \(pad(String(report.identities.count), 3))  \(pad(expires, 10))  \(report.outbound.url ?? "-")"
        }
    }
}

/// `wharf partner show`.
struct PartnerShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show one partner's identities and delivery settings.")

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    @Flag(help: "Print JSON.")
    var json = false

    func run() throws {
        let name = try PartnerName(name)
        guard let partner = try home.resolved.openStore().partner(named: name) else {
            throw WharfError.unknownPartner(name.rawValue)
        }
        let report = PartnerReport(partner)
        if json { Console.printJSON(Listing.json(report)) } else { Console.print(report.text) }
    }
}

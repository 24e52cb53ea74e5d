import ArgumentParser
import WharfCore

/// `wharf partner enable`.
struct PartnerEnable: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "enable", abstract: "Accept a disabled partner again.")

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        try home.resolved.openRegistry().setStatus(.active, of: name)
        print("Partner \(name) is active.")
    }
}

/// `wharf partner disable`.
struct PartnerDisable: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disable",
        abstract: "Refuse a partner's connections and hold its deliveries, keeping its settings."
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        try home.resolved.openRegistry().setStatus(.disabled, of: name)
        print("Partner \(name) is disabled.")
    }
}

/// `wharf partner remove`.
struct PartnerRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove a partner from the registry.",
        discussion: "Its identities and settings go; files already received and its bundle directory stay."
    )

    @OptionGroup var home: HomeOptions

    @Argument(help: "The partner's name.")
    var name: String

    func run() throws {
        let name = try PartnerName(name)
        try home.resolved.openRegistry().remove(name)
        print("Removed partner \(name).")
    }
}

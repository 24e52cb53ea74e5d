import ArgumentParser

/// `wharf partner`: the partner registry.
struct PartnerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partner",
        abstract: "Register partners, their certificates and delivery settings.",
        subcommands: [
            PartnerAdd.self, PartnerUpdate.self, PartnerList.self, PartnerShow.self,
            PartnerEnable.self, PartnerDisable.self, PartnerRemove.self, PartnerIssue.self, PartnerRevoke.self, PartnerTest.self,
        ]
    )
}

import WharfCommands

@main
enum Main {
    static func main() async {
        await WharfCLI.main()
    }
}

from interop.cli import main

main()

from fiat.sandbox.server import main

main()

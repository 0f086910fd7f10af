say "busted (lua5.4, fake server on 127.0.0.1)"
run_busted "busted" "$LOGS/busted.log"

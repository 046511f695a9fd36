"""Desktop environment: real applications under Xvfb, seen through AT-SPI. Import-free."""

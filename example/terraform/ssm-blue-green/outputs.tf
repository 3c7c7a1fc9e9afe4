# What phoenix.hcl needs: target "…" { asg = blue, peer_asg = green,
# listener = …, rule = … } with strategy "blue-green" { return_home = true }.

output "blue_autoscaling_group_name" {
  description = "The blue colour (phoenix.hcl: asg)."
  value       = aws_autoscaling_group.blue.name
}

output "green_autoscaling_group_name" {
  description = "The green colour (phoenix.hcl: peer_asg)."
  value       = aws_autoscaling_group.green.name
}

output "listener_arn" {
  description = "The listener (phoenix.hcl: listener)."
  value       = aws_lb_listener.http.arn
}

output "listener_rule_arn" {
  description = "The rule whose weights say which colour is live (phoenix.hcl: rule)."
  value       = aws_lb_listener_rule.web.arn
}

output "ami_parameter_name" {
  description = "The SSM parameter that names the image; phoenix moves it (the bake's ssm_parameter publishes to it)."
  value       = aws_ssm_parameter.ami.name
}

output "url" {
  description = "The service, through the load balancer."
  value       = "http://${aws_lb.web.dns_name}/"
}

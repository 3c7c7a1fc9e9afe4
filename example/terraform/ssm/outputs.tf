# What phoenix.hcl needs: the group (target "…" { asg = … }) and the region.

output "autoscaling_group_name" {
  description = "The group phoenix deploys to (phoenix.hcl: asg)."
  value       = aws_autoscaling_group.web.name
}

output "launch_template_id" {
  description = "The launch template; its image is resolve:ssm:<ami_parameter_name>."
  value       = aws_launch_template.web.id
}

output "ami_parameter_name" {
  description = "The SSM parameter that names the image; phoenix moves it (the bake's ssm_parameter publishes to it)."
  value       = aws_ssm_parameter.ami.name
}

output "target_group_arn" {
  description = "The target group whose health gates each deploy."
  value       = aws_lb_target_group.web.arn
}

output "url" {
  description = "The service, through the load balancer."
  value       = "http://${aws_lb.web.dns_name}/"
}

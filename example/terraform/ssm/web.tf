# The web servers: an SSM parameter naming their image, a launch template
# that launches whatever the parameter names (image_id =
# "resolve:ssm:/web/ami"), and an Auto Scaling group on its "$Latest"
# version. Terraform owns their shape; phoenix owns the image, which it
# changes by moving the parameter, never the template's image_id.
#
# A phoenix deploy holds the group on a copy of its version with the AMI
# written out, rolls the new image out on versions of its own, moves the
# parameter only once the new image has passed the health gate, and puts the
# group back on "$Latest", which then is a copy of the version Terraform
# wrote: it names the parameter again. See docs/terraform.md.

resource "aws_ssm_parameter" "ami" {
  name        = "/${var.name}/ami"
  description = "The AMI the ${var.name} web servers launch. phoenix moves it at each deploy and rollback."
  type        = "String"
  data_type   = "aws:ec2:image"
  value       = var.ami_id

  lifecycle {
    # phoenix writes each image that passes the gate as a new version, and
    # phoenix rollback writes the one before back. Terraform's value counts
    # for the first apply only: without this, the next apply would put
    # var.ami_id back and every launch from then on would use that image.
    ignore_changes = [value]
  }
}

resource "aws_security_group" "web" {
  name        = "${var.name}-web"
  description = "The ${var.name} web servers"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "The app, from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = var.app_port
  to_port                      = var.app_port
  referenced_security_group_id = aws_security_group.alb.id
}

resource "aws_vpc_security_group_egress_rule" "web_https" {
  security_group_id = aws_security_group.web.id
  description       = "HTTPS to AWS APIs and the app's dependencies"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_launch_template" "web" {
  name                   = var.name
  image_id               = "resolve:ssm:${aws_ssm_parameter.ami.name}"
  instance_type          = var.instance_type
  vpc_security_group_ids = [aws_security_group.web.id]
  user_data              = base64encode(templatefile("${path.module}/user-data.sh.tftpl", { port = var.app_port }))

  # A change made here becomes the template's default version too; phoenix
  # never changes the default version of a template whose group is on
  # "$Latest" (default_version is computed when update_default_version is
  # set, so it does not diff either way).
  update_default_version = true

  metadata_options {
    http_endpoint = "enabled"
    http_tokens   = "required"
  }

  tag_specifications {
    resource_type = "instance"
    tags = {
      Name    = var.name
      Service = var.name
    }
  }

  # No ignore_changes: the provider reads the template's latest version, and
  # once a deploy has an outcome phoenix leaves a copy of the version the
  # group was on, this one, as the latest version: the same image_id
  # (resolve:ssm:…), the same description (none) and every other argument
  # as Terraform wrote them. A change made here (a new instance type) makes
  # a new version that still names the parameter, and the next deploy rolls
  # it out.
}

resource "aws_autoscaling_group" "web" {
  name                      = var.name
  min_size                  = var.min_size
  max_size                  = var.max_size
  desired_capacity          = var.desired_capacity
  vpc_zone_identifier       = var.subnet_ids
  target_group_arns         = [aws_lb_target_group.web.arn]
  health_check_type         = "ELB"
  health_check_grace_period = 60

  launch_template {
    id      = aws_launch_template.web.id
    version = "$Latest"
  }

  tag {
    key                 = "Service"
    value               = var.name
    propagate_at_launch = true
  }

  # On "$Latest", not on aws_launch_template.web.latest_version: phoenix's
  # versions (the copy it holds the group on, the one with the new AMI) are
  # newer than Terraform's, so latest_version would read as one of them and
  # the plan would move the group to it. On "$Latest" the group's reference
  # is "$Latest" again once the deploy has an outcome, and $Latest names the
  # parameter.
  #
  # No ignore_changes needed for phoenix: a rolling deploy leaves min_size,
  # max_size and desired_capacity alone. (If you add scaling
  # policies, ignore desired_capacity as usual: they change it, not phoenix.)
  #
  # No instance_refresh block either: phoenix starts the refreshes, and a
  # refresh that Terraform started would make phoenix refuse to deploy until
  # it ends.
}
